package tools

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/sqlite"
)

func TestRegistryRefusesUndeclaredOrContradictoryTools(t *testing.T) {
	reg := NewRegistry(nil, nil)
	type none struct{}
	h := func(context.Context, auth.Principal, none) (none, error) { return none{}, nil }
	assert.PanicsWithValue(t, "tools: x mutates yet is marked read-only", func() {
		Add(reg, Spec{Name: "x", ReadOnly: true, Mutates: true}, h)
	})
	assert.PanicsWithValue(t, "tools: y must declare Mutates or ReadOnly", func() {
		Add(reg, Spec{Name: "y"}, h)
	})
	assert.NotPanics(t, func() { Add(reg, Spec{Name: "z", Mutates: true}, h) })
}

// bookkeeping tables record calls rather than being changed by them.
var bookkeeping = map[string]bool{"audit_events": true, "api_key_usage": true, "idempotency_keys": true, "goose_db_version": true}

// snapshot hashes every row of every table but the bookkeeping ones.
func snapshot(t *testing.T, db *sql.DB) map[string]string {
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(t, rows.Close())
	out := map[string]string{}
	for _, tbl := range tables {
		if bookkeeping[tbl] {
			continue
		}
		rs, err := db.Query(`SELECT * FROM "` + tbl + `" ORDER BY 1`)
		require.NoError(t, err)
		cols, _ := rs.Columns()
		h := sha256.New()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rs.Scan(ptrs...))
			fmt.Fprintf(h, "%v\n", vals)
		}
		require.NoError(t, rs.Close())
		out[tbl] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

func auditCount(t *testing.T, db *sql.DB) int {
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM audit_events`).Scan(&n))
	return n
}

// Every tool is run, over REST (where reads are not audited), with input
// that makes it do its work. A call that changed any row must have written
// an audit event, whatever its flags say; and a tool that changed rows must
// declare that it mutates.
func TestEveryChangeIsAudited(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "veref.db")
	st, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(ctx))
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	hasher, err := auth.NewHasher([]byte("audit-pepper-audit-pepper-audit-pepper-x"))
	require.NoError(t, err)
	reg := New(NewRegistry(st, nil), Deps{Hasher: hasher, PublicURL: "https://veref.test"})
	now := time.Now().UTC()
	require.NoError(t, st.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "ACME", CreatedAt: now}))
	require.NoError(t, st.CreateRecruiter(ctx, store.Recruiter{ID: "rec", TenantID: "acme", Email: "r@acme.test", CreatedAt: now}))
	p := auth.Principal{TenantID: "acme", Environment: auth.Test, RecruiterID: "rec", KeyID: "key_1", Scopes: auth.AllScopes()}

	invoke := func(tool, input string) Result {
		res, err := reg.Invoke(ctx, Call{Principal: p, Surface: SurfaceREST, Tool: tool, Input: []byte(input), TraceID: "t"})
		require.NoError(t, err, "%s %s", tool, input)
		return res
	}
	// State the inputs below refer to, made through the tools themselves.
	cand := invoke("candidates_create", `{"name":"Dana"}`).Output.(store.Candidate).ID
	ref := invoke("references_start", `{"candidateId":"`+cand+`","sendInvitations":true,"referees":[{"name":"W","email":"w@example.com","relationship":"manager"},{"name":"V","email":"v@example.com","relationship":"peer"}]}`).Output.(Reference)
	refID := ref.ID
	require.NotEmpty(t, ref.TestInvitationLinks)
	link := ref.TestInvitationLinks[0].URL
	token := link[strings.LastIndex(link, "/")+1:]
	var answers []string
	for i := 1; i <= 4; i++ {
		answers = append(answers, fmt.Sprintf(`{"questionId":"q%d","rating":4}`, i))
	}
	_, err = NewPublic(st, Deps{Hasher: hasher}).SubmitResponse(ctx, token, []byte(`{"answers":[`+strings.Join(answers, ",")+`]}`))
	require.NoError(t, err)
	rep := invoke("reports_generate", `{"id":"`+refID+`"}`).Output.(Report).ID
	share := invoke("reports_share", `{"id":"`+rep+`"}`).Output.(ShareLink).ID

	inputs := map[string]string{
		"whoami": `{}`, "candidates_list": `{}`, "candidates_get": `{"id":"` + cand + `"}`,
		"candidates_create": `{"name":"Eve"}`, "candidates_update": `{"id":"` + cand + `","role":"CTO"}`,
		"references_list": `{}`, "references_get": `{"id":"` + refID + `"}`,
		"references_start":            `{"candidate":{"name":"Fay"},"referees":[{"name":"X","email":"x@example.com","relationship":"peer"}]}`,
		"references_send_invitations": `{"id":"` + refID + `"}`,
		"reports_list":                `{}`, "reports_get": `{"id":"` + rep + `"}`,
		"reports_generate": `{"id":"` + refID + `"}`, "reports_share": `{"id":"` + rep + `"}`,
		"reports_revoke_share": `{"id":"` + rep + `","shareId":"` + share + `"}`,
		"valuations_list":      `{}`, "valuations_run": `{"id":"` + refID + `"}`,
		"references_cancel": `{"id":"` + refID + `"}`,
	}
	order := []string{}
	for _, tl := range reg.Tools() {
		if tl.Name != "references_cancel" {
			order = append(order, tl.Name)
		}
	}
	order = append(order, "references_cancel") // last: it ends the request the others use
	for _, name := range order {
		in, ok := inputs[name]
		if !ok {
			// valuations_get reads a run valuations_run has made; a tool
			// added later must be listed here.
			if name == "valuations_get" {
				continue
			}
			t.Errorf("%s: no input in this test; add one so its writes are checked", name)
			continue
		}
		tl, _ := reg.Lookup(name)
		before, events := snapshot(t, db), auditCount(t, db)
		_, err := reg.Invoke(ctx, Call{Principal: p, Surface: SurfaceREST, Tool: name, Input: []byte(in), TraceID: "t"})
		after := snapshot(t, db)
		changed := false
		for tbl, h := range after {
			if before[tbl] != h {
				changed = true
			}
		}
		if err != nil {
			assert.False(t, changed, "%s failed (%v) yet changed rows", name, err)
			continue
		}
		if changed {
			assert.Greater(t, auditCount(t, db), events, "%s changed rows and wrote no audit event", name)
			assert.True(t, tl.Mutates, "%s changed rows but does not declare Mutates", name)
		}
	}
}
