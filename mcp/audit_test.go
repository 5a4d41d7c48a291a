package mcp_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
)

// hostileArguments are arguments PostgreSQL's jsonb cannot hold as sent
// (NUL, lone surrogates) or that are not text at all (invalid UTF-8).
var hostileArguments = map[string]string{
	"NUL":               `{"name":"A\u0000B"}`,
	"NUL in a key":      `{"na\u0000me":"A"}`,
	"lone surrogate":    `{"name":"Bob\ud800"}`,
	"low surrogate":     `{"name":"\udc00Bob"}`,
	"invalid UTF-8":     "{\"name\":\"Bob\xff\"}",
	"NUL and surrogate": `{"name":"\u0000\ud800","email":"x\udfff"}`,
}

// Every tools/call from a real MCP client writes exactly one audit row,
// whatever its arguments hold and whether or not the key may call the
// tool: the trail is counted against the calls on every backend.
func TestHostileArgumentsAreAuditedOncePerCall(t *testing.T) {
	forEachBackend(t, vmcp.Options{}, func(t *testing.T, env *apitest.Env) {
		env.Tenant("acme")
		// The 2026 core goes through mcp-go; a 2025 client's plain calls
		// are answered directly. Both keep every row.
		for _, run := range []struct {
			version string
			scopes  []auth.Scope
		}{{"", nil}, {"", []auth.Scope{auth.CandidatesRead}}, {"2025-11-25", nil}, {"2025-11-25", []auth.Scope{auth.CandidatesRead}}} {
			scopes := run.scopes
			key := env.Key("acme", auth.Test, scopes...)
			c := connectVersion(t, env, key, run.version)
			calls := 0
			for _, args := range hostileArguments {
				for _, tool := range []string{"candidates_create", "who\u0000ami"} {
					callRaw(t, c, tool, args)
					calls++
				}
				// A name the server cannot read back unchanged is refused
				// before mcp-go sees it; the call is still on the trail.
				raw := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"whoami\ud800","arguments":` + args + `}}`
				rpc(t, env, key, []byte(raw))
				calls++
			}
			env.FlushAudits()
			rows := auditRows(t, env, key)
			require.Len(t, rows, calls, "version %q, scopes %v: one audit row per call", run.version, scopes)
			want := problem.InvalidInput
			if scopes != nil {
				want = problem.ScopeMissing
			}
			sent := map[string]bool{}
			for _, a := range hostileArguments {
				sent[a] = true
			}
			for _, r := range rows {
				require.Contains(t, r.Data, "input", "%s: the arguments are kept in the trail", r.Action)
				assert.True(t, sent[string(storetest.AuditedInput(t, r.Data))], "%s: the arguments are kept as sent: %v", r.Action, r.Data)
				if r.Action == "candidates_create" {
					assert.EqualValues(t, want, r.Outcome)
				}
			}
		}
	})
}

// callRaw sends arguments exactly as given (they are not re-encoded by
// mcp-go); a refusal may come back as a tool error or a JSON-RPC error.
func callRaw(t *testing.T, c *client.Client, name, args string) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = json.RawMessage(args)
	_, _ = c.CallTool(testCtx(t), req)
}

func auditRows(t *testing.T, env *apitest.Env, key string) []store.AuditEvent {
	t.Helper()
	p := env.Principal(key)
	rows, _, err := env.Store.ListAudit(context.Background(), store.TenancyOf(p),
		store.AuditFilter{ActorID: p.KeyID}, store.Page{Limit: 500})
	require.NoError(t, err)
	return rows
}
