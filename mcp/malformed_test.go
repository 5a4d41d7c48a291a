package mcp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
)

func TestToolErrorsLocateArguments(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	c := connect(t, env, env.Key("acme", auth.Test))

	res := call(t, c, echoTool, map[string]any{"text": ""})
	require.True(t, res.IsError)
	assert.Contains(t, text(t, res), "arguments.text")
	assert.NotContains(t, text(t, res), "body.")

	res = call(t, c, "candidates_create", map[string]any{"name": "A", "email": "a\u0000b"})
	require.True(t, res.IsError)
	assert.Contains(t, text(t, res), "arguments.email")

	created := call(t, c, "candidates_create", map[string]any{"name": "Ann"})
	require.False(t, created.IsError, text(t, created))
	res = call(t, c, "candidates_update", map[string]any{"id": structured(t, created)["id"]})
	require.True(t, res.IsError)
	assert.Contains(t, text(t, res), "- arguments: ", "the input as a whole, not arguments.body")
}

func TestManglingTextInArgumentsIsAToolError(t *testing.T) {
	forEachBackend(t, vmcp.Options{}, func(t *testing.T, env *apitest.Env) {
		env.Tenant("acme")
		key := env.Key("acme", auth.Test)
		for _, raw := range []string{
			`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"candidates_create","arguments":{"name":"Bob\ud800"}}}`,
			"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"candidates_create\",\"arguments\":{\"name\":\"Bob\xff\"}}}",
		} {
			res, body := rpc(t, env, key, []byte(raw))
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
			var msg struct {
				ID     int `json:"id"`
				Result struct {
					IsError bool `json:"isError"`
					Content []struct {
						Text string `json:"text"`
					} `json:"content"`
				} `json:"result"`
			}
			require.NoError(t, json.Unmarshal(body, &msg), string(body))
			assert.Equal(t, 7, msg.ID)
			assert.True(t, msg.Result.IsError, string(body))
			require.Len(t, msg.Result.Content, 1)
			assert.Contains(t, msg.Result.Content[0].Text, "INVALID_INPUT: arguments.name")
		}
		c := connect(t, env, key)
		list := call(t, c, "candidates_list", map[string]any{})
		assert.Empty(t, structured(t, list)["data"], "nothing was stored, mangled or not")
	})
}

func TestBatchesAndOtherMethodsAreRefusedClearly(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)

	res, body := rpc(t, env, key, []byte(`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`))
	assert.Equal(t, 422, res.StatusCode, string(body))
	assert.Contains(t, string(body), "batches are not supported")
	assert.Contains(t, string(body), `"code":-32600`)

	for _, method := range []string{http.MethodDelete, http.MethodGet, http.MethodPut} {
		req, err := http.NewRequest(method, mcpURL(env), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, method)
		assert.Equal(t, "POST", res.Header.Get("Allow"), method)
		assert.NotEmpty(t, res.Header.Get("X-Trace-Id"))
	}
}

func TestManglingTextOutsideArgumentsIsAnRPCError(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)
	res, body := rpc(t, env, key, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami\ud800","arguments":{}}}`))
	assert.Equal(t, 422, res.StatusCode, string(body))
	assert.Contains(t, string(body), "params.name")
	assert.Contains(t, string(body), "INVALID_INPUT")
}

// Every tool, over MCP, with a corpus of malformed arguments: each answer is
// a tool error or a JSON-RPC error, never a 5xx or an internal error.
func TestMalformedArgumentsCorpus(t *testing.T) {
	forEachBackend(t, vmcp.Options{}, func(t *testing.T, env *apitest.Env) {
		env.Tenant("acme")
		values := []string{`null`, `123`, `"x"`, `true`, `[]`, `{}`, `"a\ud800"`, "\"a\xffb\"", `"a\u0000b"`,
			`-1`, `1e999`, `123456789012345678901234567890`, `"` + strings.Repeat("z", 70000) + `"`,
			strings.Repeat("[", 300) + strings.Repeat("]", 300)}
		for _, tl := range env.Registry.Tools() {
			key := env.Key("acme", auth.Test) // one per tool: some end or change what they touch
			props, _ := tl.InputSchema["properties"].(map[string]any)
			var args []string
			for _, whole := range []string{`null`, `[]`, `"x"`, `42`, `{"zzzUnknown":1}`} {
				args = append(args, whole)
			}
			for name := range props {
				for _, v := range values {
					args = append(args, `{"`+name+`":`+v+`}`)
				}
			}
			for _, a := range args {
				raw := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tl.Name + `","arguments":` + a + `}}`
				res, body := rpc(t, env, key, []byte(raw))
				assert.Less(t, res.StatusCode, 500, "%s %s: %s", tl.Name, a, body)
				assert.NotEmpty(t, body, "%s %s", tl.Name, a)
				assert.NotContains(t, string(body), `"code":-32603`, "%s %s: an internal error", tl.Name, a)
			}
		}
	})
}
