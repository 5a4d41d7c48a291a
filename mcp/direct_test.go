package mcp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

const pathTool = "mcptest_path" // says which path ran it

type pathOut struct {
	Via string `json:"via"`
}

// directEnv serves MCP directly, or through mcp-go alone when a request
// carries X-Test-Via: mcp-go, over one registry and store.
func directEnv(t *testing.T) *apitest.Env {
	return apitest.New(t, storetest.OpenSQLite(t), apitest.Options{MCP: func(reg *tools.Registry) http.Handler {
		addTestTools(reg)
		tools.Add(reg, tools.Spec{
			Name: pathTool, Title: "Path", Description: "Test tool naming the path that ran it.",
			Policy: auth.AnyOf(auth.ReportsRead), ReadOnly: true,
			HTTP: tools.Binding{Method: http.MethodGet, Path: "/mcptest/path"},
		}, func(ctx context.Context, _ auth.Principal, _ struct{}) (pathOut, error) {
			if server.ServerFromContext(ctx) != nil {
				return pathOut{Via: "mcp-go"}, nil
			}
			return pathOut{Via: "direct"}, nil
		})
		direct := vmcp.NewHandler(reg, vmcp.Options{})
		viaGo := vmcp.ViaMCPGo(direct)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Test-Via") == "mcp-go" {
				viaGo.ServeHTTP(w, r)
				return
			}
			direct.ServeHTTP(w, r)
		})
	}})
}

// A plain tools/call is answered without mcp-go's transport, with the very
// bytes mcp-go would have written: results, wrapped results, tool errors,
// ids of each kind, text that JSON escapes.
func TestDirectCallsAnswerAsMCPGoDoes(t *testing.T) {
	env := directEnv(t)
	env.Tenant("acme")
	key := env.Key("acme", auth.Test, auth.CandidatesRead, auth.ReportsRead)
	ten := store.Tenancy{TenantID: "acme", Environment: auth.Test}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range []string{"Zoë <b>&amp;</b>", "Line\u2028Sep \"quoted\" \\ back", "Ann"} {
		require.NoError(t, env.Store.InsertCandidate(context.Background(), ten, store.Candidate{ID: store.NewID("cand"),
			Name: name, Email: "x@example.com", CreatedAt: now, UpdatedAt: now}))
	}

	for name, body := range map[string]string{
		"list":          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"candidates_list","arguments":{"limit":10}}}`,
		"string id":     `{"jsonrpc":"2.0","id":"a\u0041<","method":"tools/call","params":{"name":"candidates_list","arguments":{"limit":2}}}`,
		"big id":        `{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"whoami"}}`,
		"fraction id":   `{"jsonrpc":"2.0","id":1.5e3,"method":"tools/call","params":{"name":"whoami","arguments":null}}`,
		"wrapped":       `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"mcptest_echo","arguments":{"text":"<&> é \u2029"}}}`,
		"tool error":    `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"mcptest_echo","arguments":{"text":""}}}`,
		"not an object": `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"mcptest_echo","arguments":[1]}}`,
		"unknown field": `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"candidates_list","arguments":{"nope":1}}}`,
		"whitespace":    " {\n \"jsonrpc\" : \"2.0\", \"id\" : 6 ,\"method\":\"tools/call\",\"params\":{\"name\":\"whoami\",\"arguments\":{ }}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			res, got := rpc(t, env, key, []byte(body))
			ref, want := rpc(t, env, key, []byte(body), "X-Test-Via", "mcp-go")
			require.Equal(t, ref.StatusCode, res.StatusCode, "%s", got)
			assert.Equal(t, ref.Header.Get("Content-Type"), res.Header.Get("Content-Type"))
			if name == "whitespace" || name == "big id" || name == "fraction id" {
				// whoami's result names the key; both are the same here.
				assert.Equal(t, string(want), string(got))
				return
			}
			// Audit ids are fresh per call; nothing else may differ.
			assert.Equal(t, string(scrubAuditIDs(want)), string(scrubAuditIDs(got)))
		})
	}

	_, got := rpc(t, env, key, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mcptest_path"}}`))
	assert.Contains(t, string(got), `\"via\":\"direct\"`)
	_, got = rpc(t, env, key, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mcptest_path"}}`), "X-Test-Via", "mcp-go")
	assert.Contains(t, string(got), `\"via\":\"mcp-go\"`)
}

// Whatever is not a plain call of an allowed tool still goes to mcp-go.
func TestUnusualCallsGoThroughMCPGo(t *testing.T) {
	env := directEnv(t)
	env.Tenant("acme")
	key := env.Key("acme", auth.Test, auth.ReportsRead)
	for name, c := range map[string]struct {
		body    string
		headers []string
	}{
		"_meta":            {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mcptest_path","_meta":{"progressToken":1}}}`, nil},
		"charset":          {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mcptest_path"}}`, []string{"Content-Type", "application/json; charset=utf-8"}},
		"protocol version": {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mcptest_path"}}`, []string{"Mcp-Protocol-Version", "2025-06-18"}},
		"task":             {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mcptest_path","task":{}}}`, nil},
	} {
		t.Run(name, func(t *testing.T) {
			res, got := rpc(t, env, key, []byte(c.body), c.headers...)
			ref, want := rpc(t, env, key, []byte(c.body), append([]string{"X-Test-Via", "mcp-go"}, c.headers...)...)
			assert.Equal(t, ref.StatusCode, res.StatusCode)
			if name == "protocol version" {
				// A supported 2025 version is plain; it runs directly.
				assert.Contains(t, string(got), `\"via\":\"direct\"`)
				return
			}
			assert.Equal(t, string(want), string(got))
			assert.NotContains(t, string(got), `\"via\":\"direct\"`)
		})
	}
	for _, bad := range []string{"2099-01-01", "2026-07-28"} {
		res, got := rpc(t, env, key, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mcptest_path"}}`),
			"Mcp-Protocol-Version", bad)
		ref, want := rpc(t, env, key, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mcptest_path"}}`),
			"Mcp-Protocol-Version", bad, "X-Test-Via", "mcp-go")
		assert.Equal(t, ref.StatusCode, res.StatusCode, bad)
		assert.Equal(t, string(want), string(got), bad)
	}
}

// scrubAuditIDs blanks evt_… ids, which tool errors carry and which differ
// between any two calls.
func scrubAuditIDs(b []byte) []byte {
	out := bytes.Clone(b)
	for i := bytes.Index(out, []byte("evt_")); i >= 0; {
		j := i + 4
		for j < len(out) && (out[j] >= '0' && out[j] <= '9' || out[j] >= 'a' && out[j] <= 'z' || out[j] >= 'A' && out[j] <= 'Z') {
			out[j] = 'x'
			j++
		}
		k := bytes.Index(out[j:], []byte("evt_"))
		if k < 0 {
			break
		}
		i = j + k
	}
	return out
}

// An answer past net/http's 2 KiB buffer still carries its length, over
// REST and MCP, rather than going out chunked.
func TestLongAnswersCarryTheirLength(t *testing.T) {
	env := directEnv(t)
	env.Tenant("acme")
	key := env.Key("acme", auth.Test, auth.CandidatesRead)
	ten := store.Tenancy{TenantID: "acme", Environment: auth.Test}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 20 {
		require.NoError(t, env.Store.InsertCandidate(context.Background(), ten, store.Candidate{ID: store.NewID("cand"),
			Name: fmt.Sprintf("Candidate %02d with a name long enough to matter", i), Email: "x@example.com", CreatedAt: now, UpdatedAt: now}))
	}
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, env.URL+"/v1/api/candidates?limit=20", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	require.Greater(t, len(body), 2048)
	assert.Equal(t, int64(len(body)), res.ContentLength, "REST")

	res, body = rpc(t, env, key, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"candidates_list","arguments":{"limit":20}}}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	require.Greater(t, len(body), 2048)
	assert.Equal(t, int64(len(body)), res.ContentLength, "MCP")
}
