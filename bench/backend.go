package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/sqlite"
)

const benchTenant = "bench"

// backend is one database with the servers running on it. The benchmark
// keeps its own store open on the same database to set up data, revoke
// keys and count rows.
type backend struct {
	kind    string
	dbURL   string // VEREF_DATABASE_URL for the servers
	pepper  string
	st      store.Store
	keys    *api.KeyService
	key     map[string]string // scenario -> token
	keyID   map[string]string
	servers []*proc
	drop    func()
}

func newSQLite(ctx context.Context, tmp string) (*backend, error) {
	path := filepath.Join(tmp, "bench.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	b := &backend{kind: "sqlite", dbURL: "sqlite:" + path, st: st}
	return b, b.setup(ctx)
}

// newPostgres works in a schema of its own, dropped at the end.
func newPostgres(ctx context.Context, dsn string) (*backend, error) {
	schema := "veref_bench_" + strings.ToLower(auth.RandomString(10))
	admin := func(sql string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := admin("CREATE SCHEMA " + schema); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	st, err := postgres.Open(ctx, u.String())
	if err != nil {
		return nil, err
	}
	b := &backend{kind: "postgres", dbURL: u.String(), st: st,
		drop: func() { _ = admin("DROP SCHEMA " + schema + " CASCADE") }}
	return b, b.setup(ctx)
}

func (b *backend) setup(ctx context.Context) error {
	if err := b.st.Migrate(ctx); err != nil {
		return err
	}
	b.pepper = auth.RandomString(48)
	h, err := auth.NewHasher([]byte(b.pepper))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if err := b.st.CreateTenant(ctx, store.Tenant{ID: benchTenant, Name: "Bench", CreatedAt: now}); err != nil {
		return err
	}
	if err := b.st.CreateRecruiter(ctx, store.Recruiter{ID: "bench_recruiter", TenantID: benchTenant, Email: "bench@veref.test",
		Admin: true, CreatedAt: now}); err != nil {
		return err
	}
	b.keys = &api.KeyService{Store: b.st, Hasher: h, Now: time.Now, MaxActive: 1_000_000}
	b.key, b.keyID = map[string]string{}, map[string]string{}
	for _, s := range []string{"me", "guard", "rest", "mcp", "load"} {
		tok, id, err := b.newKey(ctx, "bench "+s)
		if err != nil {
			return err
		}
		b.key[s], b.keyID[s] = tok, id
	}
	ten := store.Tenancy{TenantID: benchTenant, Environment: auth.Test}
	for i := range 20 {
		c := store.Candidate{ID: store.NewID("cand"), Name: fmt.Sprintf("Candidate %02d", i), Email: fmt.Sprintf("c%02d@example.test", i),
			Role: "Engineer", CreatedAt: now, UpdatedAt: now}
		if err := b.st.InsertCandidate(ctx, ten, c); err != nil {
			return err
		}
	}
	return nil
}

func (b *backend) newKey(ctx context.Context, name string) (token, id string, err error) {
	return b.newKeyIn(ctx, name, auth.Test)
}

func (b *backend) newKeyIn(ctx context.Context, name string, env auth.Environment) (token, id string, err error) {
	k, err := b.keys.Create(ctx, api.NewKey{TenantID: benchTenant, RecruiterID: "bench_recruiter", Name: name + " " + auth.RandomString(6),
		Environment: env}, api.Actor{Kind: store.ActorOperator, ID: "bench"})
	if err != nil {
		return "", "", err
	}
	return k.Plaintext, k.APIKey.ID, nil
}

func (b *backend) start(ctx context.Context, bin, tmp string) error {
	p, err := startServer(ctx, bin, b.dbURL, b.pepper, filepath.Join(tmp, b.kind+"-a.log"))
	if err != nil {
		return err
	}
	b.servers = append(b.servers, p)
	for _, t := range b.targets() {
		if t.refused {
			continue
		}
		if err := check(ctx, t.req); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	return nil
}

func (b *backend) stopAll() {
	for _, p := range b.servers {
		p.stop()
	}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

const mcpCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"candidates_list","arguments":{"limit":10}}}`

func (b *backend) targets() []*target {
	base := b.servers[0].url
	mcpHeaders := bearer(b.key["mcp"])
	mcpHeaders["Content-Type"] = "application/json"
	mcpHeaders["Accept"] = "application/json, text/event-stream"
	return []*target{
		{name: meName(b.kind), backend: b.kind, req: request{url: base + "/v1/api/me", headers: bearer(b.key["me"])}},
		// /me reads the key's agent token budget from storage; a path that
		// does not exist is answered by the guard after authentication
		// alone, which is what "key checks near the bare handler" measures.
		{name: guardName(b.kind), backend: b.kind, refused: true, req: request{url: base + "/v1/api/bench-no-such-path", headers: bearer(b.key["guard"])}},
		{name: restName(b.kind), backend: b.kind, req: request{url: base + "/v1/api/candidates?limit=10", headers: bearer(b.key["rest"])}},
		{name: mcpName(b.kind), backend: b.kind, req: request{url: base + "/v1/api/mcp", method: "POST", body: mcpCall, headers: mcpHeaders}},
	}
}

// check makes one request and insists on a 200 with a real answer, so a
// run never measures how fast errors are.
func check(ctx context.Context, r request) error {
	method := r.method
	if method == "" {
		method = "GET"
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url, strings.NewReader(r.body))
	if err != nil {
		return err
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("status %d: %s", res.StatusCode, body)
	}
	if strings.Contains(r.url, "/mcp") {
		var rpc struct {
			Result struct {
				IsError bool `json:"isError"`
			} `json:"result"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal(body, &rpc); err != nil || rpc.Error != nil || rpc.Result.IsError {
			return fmt.Errorf("MCP call failed: %s", body)
		}
	}
	return nil
}
