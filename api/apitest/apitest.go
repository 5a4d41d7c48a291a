// Package apitest starts a real Veref server over a real store for tests of
// any surface, with helpers to make tenants and keys. It is test support,
// like net/http/httptest.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/logdedup"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// Pepper is the test pepper; tests never share it with anything real.
const Pepper = "apitest-pepper-apitest-pepper-apitest-pepper"

// Options adjust the server under test.
type Options struct {
	Clerk         *api.ClerkVerifier
	MaxActiveKeys int
	// MCP and Agent build the surfaces to mount, from the registry.
	MCP      func(reg *tools.Registry) http.Handler
	MCPFront func(http.Handler) http.Handler
	Agent    func(reg *tools.Registry) http.Handler
	// Now is the server's clock (default time.Now), so tests can move time
	// instead of waiting for it.
	Now func() time.Time
	// NoKeyCache turns the verified-key cache off (it is on by default,
	// as in production, so every test also exercises eviction).
	NoKeyCache bool
	// AuthTimeout bounds the key lookup (default auth.DefaultLookupTimeout).
	AuthTimeout time.Duration
	// Log receives the server's log lines (default: discarded).
	Log io.Writer
	// Limits are the guard's limits; a nil AgentTokens gets the default
	// budget over the store.
	Limits api.Limits
	// Tracer records the server's spans (default: ids only, nothing kept).
	Tracer trace.TracerProvider
	// PublicURL is VEREF_PUBLIC_URL.
	PublicURL string
	// Repeats de-duplicates repeated error lines (default: a 10s
	// interval on Now).
	Repeats *logdedup.Deduper
	// MailLogOnly is a server whose live e-mail only goes to the log
	// (VEREF_MAIL=log).
	MailLogOnly bool
}

// Env is a running server and what tests need to drive it.
type Env struct {
	T        testing.TB
	Store    store.Store
	Hasher   *auth.Hasher
	Registry *tools.Registry
	Server   *api.Server
	Usage    *api.UsageWriter
	// Audits holds the audit events of MCP and agent reads until flushed.
	Audits *api.AuditWriter
	HTTP   *httptest.Server
	URL    string
	Keys   *api.KeyService
	// KeyCache is the server's verified-key cache (nil with NoKeyCache).
	KeyCache *auth.KeyCache
	// Limits as the server runs them (AgentTokens for charging).
	Limits api.Limits

	mu      sync.Mutex
	tenants []string // made with Tenant, their audit trails checked at the end
}

// New starts a server over st, closed when the test ends.
func New(t testing.TB, st store.Store, o Options) *Env {
	t.Helper()
	hasher, err := auth.NewHasher([]byte(Pepper))
	require.NoError(t, err)
	log := zerolog.New(io.Discard)
	if o.Log != nil {
		log = zerolog.New(o.Log)
	}
	e := &Env{T: t, Store: st, Hasher: hasher}
	// Registered first, so it runs last: after the audit writer flushed.
	t.Cleanup(e.checkAudit)
	e.HTTP = httptest.NewUnstartedServer(nil)
	e.URL = "http://" + e.HTTP.Listener.Addr().String()
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.Limits.DefaultRate.Requests == 0 {
		o.Limits.DefaultRate = api.DefaultRateLimit
	}
	if o.Limits.AgentTokens == nil {
		o.Limits.AgentTokens = &quota.AgentTokens{Store: st, Now: now}
	}
	e.Limits = o.Limits
	if o.Repeats == nil {
		o.Repeats = logdedup.New(0, now)
	}
	deps := tools.Deps{Now: now, Hasher: hasher, PublicURL: e.URL, DefaultRateLimit: o.Limits.DefaultRate, AgentTokens: o.Limits.AgentTokens,
		MailLogOnly: o.MailLogOnly}
	e.Registry = tools.New(tools.NewRegistry(st, now), deps)
	e.Usage = api.NewUsageWriter(st, log, 50*time.Millisecond)
	e.Audits = api.NewAuditWriter(st, log, 50*time.Millisecond)
	e.Registry.QueueReadAudits(e.Audits)
	e.Registry.SetLog(log)
	opts := api.Options{Store: st, Registry: e.Registry, Hasher: hasher, Usage: e.Usage, Log: log, Now: now,
		Clerk: o.Clerk, MaxActiveKeys: o.MaxActiveKeys, AppURL: e.URL + "/app", AuthTimeout: o.AuthTimeout, Limits: o.Limits, Tracer: o.Tracer,
		PublicURL: o.PublicURL, Repeats: o.Repeats}
	stopWatch := func() {}
	if w, ok := st.(store.KeyWatcher); ok && !o.NoKeyCache {
		e.KeyCache = auth.NewKeyCache(0, now)
		opts.KeyCache = e.KeyCache
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = w.WatchKeys(ctx, e.KeyCache) }()
		stopWatch = func() { cancel(); <-done }
	}
	if o.MCP != nil {
		opts.MCP = o.MCP(e.Registry)
		opts.MCPFront = o.MCPFront
	}
	if o.Agent != nil {
		opts.Agent = o.Agent(e.Registry)
	} else {
		// As in production, the agent is always mounted; unconfigured it answers 503.
		opts.Agent = agent.NewHandler(e.Registry, st, agent.Config{})
	}
	opts.Public = api.PublicRoutes(tools.NewPublic(st, deps), log, o.Repeats)
	e.Server = api.New(opts)
	e.HTTP.Config.Handler = e.Server
	e.HTTP.Start()
	e.Keys = &api.KeyService{Store: st, Hasher: hasher, Now: now, MaxActive: 1000, DefaultRate: o.Limits.DefaultRate}
	t.Cleanup(func() {
		e.HTTP.Close()
		_ = e.Usage.Close(context.Background())
		_ = e.Audits.Close(context.Background())
		stopWatch()
	})
	return e
}

// Tenant creates a tenant with one admin recruiter "<id>_recruiter" and
// Clerk ids "org_<id>" / "user_<id>".
func (e *Env) Tenant(id string) {
	e.T.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	e.mu.Lock()
	e.tenants = append(e.tenants, id)
	e.mu.Unlock()
	require.NoError(e.T, e.Store.CreateTenant(ctx, store.Tenant{ID: id, Name: strings.ToUpper(id), ClerkOrgID: "org_" + id, CreatedAt: now}))
	require.NoError(e.T, e.Store.CreateRecruiter(ctx, store.Recruiter{ID: id + "_recruiter", TenantID: id,
		Email: id + "@example.test", ClerkUserID: "user_" + id, Admin: true, CreatedAt: now}))
}

// checkAudit fails the test when an audit event of its tenants lacks a
// field every event needs (store.AuditEvent.Missing), whichever surface or
// flow wrote it. A store a test broke on purpose is not read.
func (e *Env) checkAudit() {
	ctx := context.Background()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range e.tenants {
		for cursor := ""; ; {
			evs, next, err := e.Store.ListAuditEvents(ctx, id, store.AuditQuery{}, store.Page{Limit: 200, Cursor: cursor})
			if err != nil {
				e.T.Logf("audit trail of %s not checked: %v", id, err)
				return
			}
			for _, ev := range evs {
				if m := ev.Missing(); len(m) > 0 {
					e.T.Errorf("audit event %s (%s on %s) lacks %v", ev.ID, ev.Action, ev.Surface, m)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
}

// Key mints a key for the tenant's recruiter; no scopes means all.
func (e *Env) Key(tenant string, env auth.Environment, scopes ...auth.Scope) string {
	e.T.Helper()
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	created, err := e.Keys.Create(context.Background(), api.NewKey{TenantID: tenant, RecruiterID: tenant + "_recruiter",
		Name: "key " + auth.RandomString(8), Environment: env, Scopes: names},
		api.Actor{Kind: store.ActorOperator, ID: "apitest"})
	require.NoError(e.T, err)
	return created.Plaintext
}

// KeyWith mints a key with the given limits for the tenant's recruiter.
func (e *Env) KeyWith(tenant string, env auth.Environment, limits api.LimitsChange, scopes ...auth.Scope) string {
	e.T.Helper()
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	created, err := e.Keys.Create(context.Background(), api.NewKey{TenantID: tenant, RecruiterID: tenant + "_recruiter",
		Name: "key " + auth.RandomString(8), Environment: env, Scopes: names, LimitsChange: limits},
		api.Actor{Kind: store.ActorOperator, ID: "apitest"})
	require.NoError(e.T, err)
	return created.Plaintext
}

// From returns an HTTP client whose connections leave from the loopback
// address ip (127.0.0.2, 127.0.0.3…), as a caller elsewhere would.
func From(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 30 * time.Second}
}

// Principal is the principal a key authenticates as.
func (e *Env) Principal(key string) auth.Principal {
	e.T.Helper()
	a := &auth.Authenticator{Keys: e.Store, Hasher: e.Hasher}
	p, err := a.Authenticate(context.Background(), key)
	require.NoError(e.T, err)
	return p
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r Response) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Decode decodes the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), string(r.Body))
}

// Code is the problem+json code of an error response.
func (r Response) Code() string {
	c, _ := r.JSON()["code"].(string)
	return c
}

// Do sends a request with key as a bearer token (none when key is "");
// body is JSON-encoded unless it is already a string or []byte.
func (e *Env) Do(method, path, key string, body any, headers ...string) Response {
	e.T.Helper()
	return e.DoWith(http.DefaultClient, method, path, key, body, headers...)
}

// DoWith is Do through client (see From).
func (e *Env) DoWith(client *http.Client, method, path, key string, body any, headers ...string) Response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(e.T, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	require.NoError(e.T, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	require.NoError(e.T, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.T, err)
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// FlushAudits writes the queued audit events of reads now.
func (e *Env) FlushAudits() {
	e.T.Helper()
	require.NoError(e.T, e.Audits.Flush(context.Background()))
}

// FlushUsage writes queued usage rows now.
func (e *Env) FlushUsage() {
	e.T.Helper()
	require.NoError(e.T, e.Usage.Flush(context.Background()))
}
