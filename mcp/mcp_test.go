package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/prompts"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

func TestInitializeNegotiatesEachVersionStatelessly(t *testing.T) {
	env := newEnv(t, vmcp.Options{Version: "1.2.3"})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)

	for _, version := range []string{"2025-03-26", "2025-06-18", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			res, body := rpc(t, env, key, initializeMsg(version))
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
			assert.Empty(t, res.Header.Get("Mcp-Session-Id"), "stateless: no session is minted")

			var msg struct {
				Result mcp.InitializeResult `json:"result"`
			}
			require.NoError(t, json.Unmarshal(body, &msg), string(body))
			assert.Equal(t, version, msg.Result.ProtocolVersion)
			assert.Equal(t, "veref", msg.Result.ServerInfo.Name)
			assert.Equal(t, "1.2.3", msg.Result.ServerInfo.Version)
			assert.Equal(t, prompts.MCPInstructions, msg.Result.Instructions)
			require.NotNil(t, msg.Result.Capabilities.Tools)

			// A request after initialize needs no session id: each POST
			// stands on its own key.
			res, body = rpc(t, env, key, map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
				"MCP-Protocol-Version", version)
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
			assert.Contains(t, string(body), `"whoami"`)
		})
	}

	t.Run("mcp-go client default negotiation", func(t *testing.T) {
		c := connect(t, env, key)
		assert.Contains(t, listNames(t, c), "whoami")
		assert.False(t, call(t, c, "whoami", nil).IsError)
	})
	for _, version := range []string{"2025-06-18", "2025-11-25"} {
		t.Run("mcp-go client pinned to "+version, func(t *testing.T) {
			c := connectVersion(t, env, key, version)
			assert.Equal(t, allowedNames(env, key), listNames(t, c))
			assert.Equal(t, "test", structured(t, call(t, c, "whoami", nil))["environment"])
		})
	}

	t.Run("instructions are written for a model", func(t *testing.T) {
		for _, must := range []string{"whoami", "untrusted", "tenant"} {
			assert.Contains(t, strings.ToLower(prompts.MCPInstructions), must)
		}
	})
}

func TestToolsListShowsExactlyWhatScopesAllow(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")

	cases := map[string][]auth.Scope{
		"all scopes":        nil,
		"candidates:read":   {auth.CandidatesRead},
		"reports:read":      {auth.ReportsRead},
		"valuations:write":  {auth.ValuationsWrite},
		"references:read+w": {auth.ReferencesRead, auth.ReferencesWrite},
	}
	for name, scopes := range cases {
		t.Run(name, func(t *testing.T) {
			key := env.Key("acme", auth.Test, scopes...)
			got := listNames(t, connect(t, env, key))
			assert.Equal(t, allowedNames(env, key), got)
			assert.Contains(t, got, "whoami")
		})
	}

	t.Run("candidates:read sees whoami and candidate reads only", func(t *testing.T) {
		key := env.Key("acme", auth.Test, auth.CandidatesRead)
		got := listNames(t, connect(t, env, key))
		for _, n := range got {
			tl, ok := env.Registry.Lookup(n)
			require.True(t, ok, n)
			if n != "whoami" {
				assert.True(t, strings.HasPrefix(n, "candidates_"), "unexpected tool %s", n)
				assert.True(t, tl.ReadOnly, "write tool %s listed for a read key", n)
			}
		}
		assert.NotContains(t, got, secretTool)
		assert.NotContains(t, got, echoTool)
	})

	t.Run("all scopes see the scoped test tools", func(t *testing.T) {
		got := listNames(t, connect(t, env, env.Key("acme", auth.Test)))
		assert.Contains(t, got, secretTool)
		assert.Contains(t, got, echoTool)
		assert.Len(t, got, len(env.Registry.Tools()))
	})
}

func TestToolDescriptionsComeFromTheRegistry(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	c := connect(t, env, env.Key("acme", auth.Live))

	// Read the wire form, not mcp-go's parsed struct, so the test sees what
	// any client sees.
	res, body := rpc(t, env, env.Key("acme", auth.Live), map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
		"MCP-Protocol-Version", "2025-11-25")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var msg struct {
		Result struct {
			Tools []map[string]any `json:"tools"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(body, &msg), string(body))
	require.Len(t, msg.Result.Tools, len(env.Registry.Tools()))
	for _, wire := range msg.Result.Tools {
		name := wire["name"].(string)
		tl, ok := env.Registry.Lookup(name)
		require.True(t, ok, name)
		assert.Equal(t, tl.Title, wire["title"], name)
		assert.Equal(t, tl.Documented(), wire["description"], name)
		assert.Equal(t, roundTrip(t, tl.InputSchema), wire["inputSchema"], name)
		out := wire["outputSchema"].(map[string]any)
		assert.Equal(t, "object", out["type"], "%s: MCP output schemas are objects", name)
		if tl.OutputSchema["type"] == "object" {
			assert.Equal(t, roundTrip(t, tl.OutputSchema), out, name)
		} else {
			assert.Equal(t, roundTrip(t, tl.OutputSchema), out["properties"].(map[string]any)["result"], name)
		}
		ann := wire["annotations"].(map[string]any)
		assert.Equal(t, tl.ReadOnly, ann["readOnlyHint"], name)
		assert.Equal(t, tl.Destructive, ann["destructiveHint"], name)
		assert.Equal(t, tl.Idempotent, ann["idempotentHint"], name)
		assert.Equal(t, tl.OpenWorld, ann["openWorldHint"], name)
	}

	// And mcp-go's client accepts them.
	assert.NotEmpty(t, listNames(t, c))
}

func roundTrip(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestHiddenToolFailsLikeUnknownTool(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test, auth.CandidatesRead)
	p := env.Principal(key)
	hidden, ok := env.Registry.Lookup(secretTool)
	require.True(t, ok)
	require.False(t, p.Can(hidden.Policy), "the test needs a tool this key may not use")

	callRaw := func(name string) (int, map[string]any) {
		res, body := rpc(t, env, key, map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call",
			"params": map[string]any{"name": name, "arguments": map[string]any{}}},
			"MCP-Protocol-Version", "2025-06-18")
		var msg map[string]any
		require.NoError(t, json.Unmarshal(body, &msg), string(body))
		return res.StatusCode, msg
	}
	hiddenStatus, hiddenMsg := callRaw(secretTool)
	unknownStatus, unknownMsg := callRaw("mcptest_no_such_tool")

	require.Contains(t, hiddenMsg, "error", "a hidden tool must not run: %v", hiddenMsg)
	assert.NotContains(t, hiddenMsg, "result")
	assert.Equal(t, unknownStatus, hiddenStatus)
	hiddenErr := hiddenMsg["error"].(map[string]any)
	unknownErr := unknownMsg["error"].(map[string]any)
	assert.Equal(t, unknownErr["code"], hiddenErr["code"])
	assert.Equal(t, unknownErr["data"], hiddenErr["data"])
	assert.Equal(t,
		strings.ReplaceAll(unknownErr["message"].(string), "mcptest_no_such_tool", "X"),
		strings.ReplaceAll(hiddenErr["message"].(string), secretTool, "X"),
		"only the echoed name may differ")
	assert.NotContains(t, strings.ToLower(hiddenErr["message"].(string)), "scope")

	// Both refusals are on the audit trail, told apart only there.
	env.FlushAudits() // reads are audited in batches
	evs, _, err := env.Store.ListAudit(testCtx(t), store.TenancyOf(p), store.AuditFilter{Surface: "mcp"}, store.Page{})
	require.NoError(t, err)
	outcomes := map[string]string{}
	for _, ev := range evs {
		outcomes[ev.Action] = string(ev.Outcome)
		assert.EqualValues(t, store.ActorAPIKey, ev.ActorKind)
		assert.Equal(t, p.KeyID, ev.ActorID)
	}
	assert.Equal(t, map[string]string{secretTool: string(problem.ScopeMissing), "mcptest_no_such_tool": "NOT_FOUND"}, outcomes)

	// The same through mcp-go's client.
	c := connect(t, env, key)
	req := mcp.CallToolRequest{}
	req.Params.Name = secretTool
	_, err = c.CallTool(testCtx(t), req)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")

	// A key with the scope can call it, so the refusal above is the filter.
	ok2 := connect(t, env, env.Key("acme", auth.Test, auth.ValuationsWrite))
	assert.Equal(t, "s3cret", structured(t, call(t, ok2, secretTool, map[string]any{}))["secret"])
}

func TestCallWhoami(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Live, auth.CandidatesRead, auth.ReportsRead)
	p := env.Principal(key)
	c := connect(t, env, key)

	res := call(t, c, "whoami", map[string]any{})
	require.False(t, res.IsError, text(t, res))
	got := structured(t, res)
	assert.Equal(t, "acme", got["tenantId"])
	assert.Equal(t, "live", got["environment"])
	assert.Equal(t, p.KeyID, got["keyId"])
	assert.Equal(t, p.KeyPrefix, got["keyPrefix"])
	assert.Equal(t, "acme_recruiter", got["recruiterId"])
	assert.ElementsMatch(t, []any{"candidates:read", "reports:read"}, got["scopes"])
	assert.NotContains(t, text(t, res), key, "the token never comes back")

	// The text rendering is the same JSON, for clients that ignore structuredContent.
	var fromText map[string]any
	require.NoError(t, json.Unmarshal([]byte(text(t, res)), &fromText))
	assert.Equal(t, got, fromText)

	// Arguments omitted entirely are {}.
	assert.False(t, call(t, c, "whoami", nil).IsError)
}

func TestToolErrorsAreToolResults(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	c := connect(t, env, env.Key("acme", auth.Test, auth.ReportsRead))

	res := call(t, c, echoTool, map[string]any{"text": ""})
	require.True(t, res.IsError)
	assert.Nil(t, res.StructuredContent)
	msg := text(t, res)
	assert.True(t, strings.HasPrefix(msg, string(problem.InvalidInput)+": "), msg)
	assert.Contains(t, msg, "text")

	res = call(t, c, echoTool, map[string]any{"nope": 1, "text": "x"})
	if res.IsError { // unknown fields are refused when the schema closes the object
		assert.Contains(t, text(t, res), problem.InvalidInput)
	}

	// A non-object output is wrapped so structuredContent stays an object.
	res = call(t, c, echoTool, map[string]any{"text": "hi"})
	require.False(t, res.IsError, text(t, res))
	assert.Equal(t, map[string]any{"result": []any{"hi", "HI"}}, structured(t, res))
	assert.JSONEq(t, `["hi","HI"]`, text(t, res))
}

func TestRevokedKeyStopsOnNextRequest(t *testing.T) {
	forEachBackend(t, vmcp.Options{}, func(t *testing.T, env *apitest.Env) {
		env.Tenant("acme")
		key := env.Key("acme", auth.Live)
		p := env.Principal(key)
		c := connect(t, env, key)
		require.False(t, call(t, c, "whoami", nil).IsError)

		_, err := env.Keys.Revoke(context.Background(), "acme", p.KeyID, "leaked", api.Actor{Kind: store.ActorOperator, ID: "test"})
		require.NoError(t, err)

		req := mcp.CallToolRequest{}
		req.Params.Name = "whoami"
		_, err = c.CallTool(testCtx(t), req)
		require.Error(t, err)
		var authErr *transport.AuthorizationRequiredError
		assert.ErrorAs(t, err, &authErr)

		res, body := rpc(t, env, key, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, string(body))
		assert.Contains(t, res.Header.Get("WWW-Authenticate"), "resource_metadata=")
		assert.Contains(t, string(body), problem.AuthRevokedKey)
	})
}

func TestTestKeySeesNoLiveData(t *testing.T) {
	forEachBackend(t, vmcp.Options{}, func(t *testing.T, env *apitest.Env) {
		env.Tenant("acme")
		liveKey := env.Key("acme", auth.Live)
		testKey := env.Key("acme", auth.Test)
		live := connect(t, env, liveKey)
		test := connect(t, env, testKey)

		assert.Equal(t, "test", structured(t, call(t, test, "whoami", nil))["environment"])
		assert.Equal(t, "live", structured(t, call(t, live, "whoami", nil))["environment"])

		// The test key's calls land in the test environment only.
		env.FlushAudits() // reads are audited in batches
		liveEvents, _, err := env.Store.ListAudit(context.Background(),
			store.Tenancy{TenantID: "acme", Environment: auth.Live}, store.AuditFilter{Surface: string(tools.SurfaceMCP)}, store.Page{Limit: 100})
		require.NoError(t, err)
		for _, ev := range liveEvents {
			assert.NotEqual(t, env.Principal(testKey).KeyID, ev.ActorID, "a test key's call was audited as live")
		}
		require.NotEmpty(t, liveEvents)

		if _, ok := env.Registry.Lookup("candidates_create"); !ok {
			t.Log("candidates_create is not in the registry yet; only whoami's environment was checked")
			return
		}
		const name = "Livia Only-Live"
		res := call(t, live, "candidates_create", map[string]any{"name": name, "email": "livia@example.test"})
		require.False(t, res.IsError, text(t, res))
		res = call(t, live, "candidates_list", map[string]any{})
		require.False(t, res.IsError, text(t, res))
		require.Contains(t, text(t, res), name, "the live key sees its own candidate")

		res = call(t, test, "candidates_list", map[string]any{})
		require.False(t, res.IsError, text(t, res))
		assert.NotContains(t, text(t, res), name)
	})
}

// Both paths a call can take are covered: a 2025 client's plain calls are
// answered directly, the 2026 core's through mcp-go.
func TestEveryCallIsAuditedAndNamedInUsage(t *testing.T) {
	for _, version := range []string{"2025-06-18", ""} {
		t.Run("version "+version, func(t *testing.T) { testEveryCallIsAuditedAndNamedInUsage(t, version) })
	}
}

func testEveryCallIsAuditedAndNamedInUsage(t *testing.T, version string) {
	forEachBackend(t, vmcp.Options{}, func(t *testing.T, env *apitest.Env) {
		env.Tenant("acme")
		key := env.Key("acme", auth.Test, auth.ReportsRead)
		p := env.Principal(key)
		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		c := connectVersion(t, env, key, version, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")

		const whoamis = 3
		for range whoamis {
			require.False(t, call(t, c, "whoami", nil).IsError)
		}
		require.False(t, call(t, c, echoTool, map[string]any{"text": "a"}).IsError)
		require.True(t, call(t, c, echoTool, map[string]any{}).IsError) // refused input is audited too
		const calls = whoamis + 2

		env.FlushAudits() // reads are audited in batches
		events, _, err := env.Store.ListAudit(context.Background(), store.TenancyOf(p),
			store.AuditFilter{Surface: string(tools.SurfaceMCP)}, store.Page{Limit: 100})
		require.NoError(t, err)
		require.Len(t, events, calls)
		byAction := map[string]int{}
		for _, ev := range events {
			assert.EqualValues(t, store.ActorAPIKey, ev.ActorKind)
			assert.Equal(t, p.KeyID, ev.ActorID)
			assert.EqualValues(t, tools.SurfaceMCP, ev.Surface)
			assert.Equal(t, traceID, ev.TraceID)
			byAction[ev.Action+"/"+string(ev.Outcome)]++
		}
		assert.Equal(t, map[string]int{
			"whoami/ok": whoamis, echoTool + "/ok": 1, echoTool + "/" + string(problem.InvalidInput): 1,
		}, byAction)

		// The background flush runs every 50ms in tests; wait for it.
		var rows []store.Usage
		require.Eventually(t, func() bool {
			rows, _, err = env.Store.ListUsage(context.Background(), "acme", p.KeyID, store.Page{Limit: 100})
			require.NoError(t, err)
			n := 0
			for _, u := range rows {
				if strings.HasPrefix(u.Endpoint, "mcp:tools/call:") {
					n++
				}
			}
			return n >= calls
		}, 10*time.Second, 20*time.Millisecond)
		byEndpoint := map[string]int{}
		for _, u := range rows {
			assert.EqualValues(t, tools.SurfaceMCP, u.Surface)
			assert.Equal(t, traceID, u.TraceID)
			byEndpoint[u.Endpoint]++
		}
		t.Logf("usage by endpoint: %v", byEndpoint)
		assert.Equal(t, whoamis, byEndpoint["mcp:tools/call:whoami"], "%v", byEndpoint)
		assert.Equal(t, 2, byEndpoint["mcp:tools/call:"+echoTool], "%v", byEndpoint)
		assert.Positive(t, byEndpoint["mcp:initialize"]+byEndpoint["mcp:server/discover"], "%v", byEndpoint)
	})
}

func TestOriginAllowList(t *testing.T) {
	env := newEnv(t, vmcp.Options{AllowedOrigins: []string{"https://app.veref.work"}})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)
	p := env.Principal(key)

	res, body := rpc(t, env, key, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": "whoami"}}, "Origin", "https://evil.example")
	assert.Equal(t, http.StatusForbidden, res.StatusCode, string(body))
	assert.Contains(t, string(body), "ORIGIN_NOT_ALLOWED")
	env.FlushAudits() // reads are audited in batches
	events, _, err := env.Store.ListAudit(context.Background(), store.TenancyOf(p), store.AuditFilter{Surface: string(tools.SurfaceMCP)}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, events, "nothing runs for a refused origin")

	res, body = rpc(t, env, key, initializeMsg("2025-11-25"), "Origin", "https://APP.veref.work:443")
	assert.Equal(t, http.StatusOK, res.StatusCode, string(body))
	assert.Equal(t, "https://APP.veref.work:443", res.Header.Get("Access-Control-Allow-Origin"), "a listed origin may read the answer")
	assert.Contains(t, res.Header.Get("Access-Control-Expose-Headers"), "X-Trace-Id", "a listed origin may read the trace id")

	// A foreign origin is refused before any key is looked at.
	res, body = rpc(t, env, "", initializeMsg("2025-11-25"), "Origin", "https://evil.example")
	assert.Equal(t, http.StatusForbidden, res.StatusCode, string(body))

	// Browsers preflight (Authorization is not a simple header): answered
	// for listed origins without a key, refused for others.
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, mcpURL(env), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	ok := preflight("https://app.veref.work")
	assert.Equal(t, http.StatusNoContent, ok.StatusCode)
	assert.Equal(t, "https://app.veref.work", ok.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, strings.ToLower(ok.Header.Get("Access-Control-Allow-Headers")), "authorization")
	assert.Equal(t, "600", ok.Header.Get("Access-Control-Max-Age"))
	assert.Equal(t, http.StatusForbidden, preflight("https://evil.example").StatusCode)

	res, body = rpc(t, env, key, initializeMsg("2025-11-25"))
	assert.Equal(t, http.StatusOK, res.StatusCode, string(body), "no Origin: a non-browser client")

	// With no allow-list every remote browser origin is refused; loopback
	// origins (local tools such as the MCP Inspector) are not a rebinding
	// risk, since a rebinding page carries the attacker's own name.
	env2 := newEnv(t, vmcp.Options{})
	env2.Tenant("acme")
	key2 := env2.Key("acme", auth.Test)
	for origin, want := range map[string]int{
		"https://app.veref.work":     http.StatusForbidden,
		"http://localhost.evil.com":  http.StatusForbidden,
		"http://127.0.0.1.nip.io:80": http.StatusForbidden,
		"null":                       http.StatusForbidden,
		"http://localhost:3000":      http.StatusOK,
		"http://127.0.0.1:6274":      http.StatusOK,
		"http://[::1]:8080":          http.StatusOK,
	} {
		res, _ = rpc(t, env2, key2, initializeMsg("2025-11-25"), "Origin", origin)
		assert.Equal(t, want, res.StatusCode, origin)
	}
}

func TestMissingKeyIsChallenged(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	res, body := rpc(t, env, "", initializeMsg("2025-11-25"))
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, string(body))
	challenge := res.Header.Get("WWW-Authenticate")
	assert.Contains(t, challenge, `resource_metadata="`+env.URL+"/.well-known/oauth-protected-resource/v1/api/mcp")

	meta := env.Do(http.MethodGet, "/.well-known/oauth-protected-resource/v1/api/mcp", "", nil)
	require.EqualValues(t, http.StatusOK, meta.Status)
	assert.Equal(t, mcpURL(env), meta.JSON()["resource"])
}

func TestHandlerRefusesRequestsWithoutPrincipal(t *testing.T) {
	// Mounted without the guard by mistake, the handler must not serve anyone.
	env := newEnv(t, vmcp.Options{})
	bare := httptest.NewServer(vmcp.NewHandler(env.Registry, vmcp.Options{}))
	t.Cleanup(bare.Close)
	req, err := http.NewRequest(http.MethodPost, bare.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

func TestBodyLimit(t *testing.T) {
	env := newEnv(t, vmcp.Options{MaxBodyBytes: 2048})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test, auth.ReportsRead)
	big := map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": echoTool, "arguments": map[string]any{"text": strings.Repeat("x", 4096)}}}

	res, body := rpc(t, env, key, big)
	assert.EqualValues(t, http.StatusRequestEntityTooLarge, res.StatusCode, string(body))

	// Without a Content-Length the limit still holds.
	buf, err := json.Marshal(big)
	require.NoError(t, err)
	res, body = rpc(t, env, key, struct{ *strings.Reader }{strings.NewReader(string(buf))})
	assert.EqualValues(t, http.StatusRequestEntityTooLarge, res.StatusCode, string(body))

	res, body = rpc(t, env, key, initializeMsg("2025-11-25"))
	assert.Equal(t, http.StatusOK, res.StatusCode, string(body))
}

func TestNoServerStream(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)
	req, err := http.NewRequest(http.MethodGet, mcpURL(env), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}
