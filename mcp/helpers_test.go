package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

// Tools added only for these tests, so hiding, input errors and output
// wrapping are exercised whatever the real catalogue holds today.
const (
	secretTool = "mcptest_valuations_secret" // needs valuations:write
	echoTool   = "mcptest_echo"              // needs reports:read; output is an array
)

type secretIn struct{}
type secretOut struct {
	Secret string `json:"secret"`
}

type echoIn struct {
	Text string `json:"text" minLength:"1" doc:"Text to echo."`
}

func addTestTools(reg *tools.Registry) {
	tools.Add(reg, tools.Spec{
		Name: secretTool, Title: "Secret", Description: "Test tool only valuations:write may see.",
		Policy: auth.AnyOf(auth.ValuationsWrite), ReadOnly: true, Idempotent: true,
		HTTP: tools.Binding{Method: http.MethodGet, Path: "/mcptest/secret"},
	}, func(context.Context, auth.Principal, secretIn) (secretOut, error) {
		return secretOut{Secret: "s3cret"}, nil
	})
	tools.Add(reg, tools.Spec{
		Name: echoTool, Title: "Echo", Description: "Test tool echoing its input as a list.",
		Policy: auth.AnyOf(auth.ReportsRead), ReadOnly: true,
		HTTP: tools.Binding{Method: http.MethodPost, Path: "/mcptest/echo"},
	}, func(_ context.Context, _ auth.Principal, in echoIn) ([]string, error) {
		return []string{in.Text, strings.ToUpper(in.Text)}, nil
	})
}

func newEnv(t *testing.T, opts vmcp.Options) *apitest.Env {
	t.Helper()
	return newEnvOn(t, storetest.OpenSQLite(t), opts)
}

// forEachBackend runs the tests whose claims rest on storage (audit rows,
// usage rows, environment isolation, revocation) on every backend:
// PostgreSQL joins when VEREF_TEST_DATABASE_URL is set.
func forEachBackend(t *testing.T, opts vmcp.Options, f func(t *testing.T, env *apitest.Env)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { f(t, newEnvOn(t, b.Open(t), opts)) })
	}
}

func newEnvOn(t testing.TB, st store.Store, opts vmcp.Options) *apitest.Env {
	t.Helper()
	return apitest.New(t, st, apitest.Options{MCP: func(reg *tools.Registry) http.Handler {
		addTestTools(reg)
		return vmcp.NewHandler(reg, opts)
	}, MCPFront: vmcp.Front(opts)})
}

func mcpURL(env *apitest.Env) string { return env.URL + vmcp.EndpointPath }

// connect opens an initialized mcp-go client over Streamable HTTP, letting
// mcp-go negotiate (it prefers the stateless 2026-07-28 core).
func connect(t *testing.T, env *apitest.Env, key string, headers ...string) *client.Client {
	t.Helper()
	return connectVersion(t, env, key, "", headers...)
}

// connectVersion pins the protocol version; a 2025 version takes the
// initialize handshake.
func connectVersion(t *testing.T, env *apitest.Env, key, version string, headers ...string) *client.Client {
	t.Helper()
	h := map[string]string{}
	if key != "" {
		h["Authorization"] = "Bearer " + key
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	c, err := client.NewStreamableHttpClient(mcpURL(env), transport.WithHTTPHeaders(h))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := testCtx(t)
	require.NoError(t, c.Start(ctx))
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	req.Params.ClientInfo = mcp.Implementation{Name: "veref-mcp-test", Version: "1"}
	res, err := c.Initialize(ctx, req)
	require.NoError(t, err)
	if version != "" {
		require.Equal(t, version, res.ProtocolVersion)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func listNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(testCtx(t), mcp.ListToolsRequest{})
	require.NoError(t, err)
	names := make([]string, 0, len(res.Tools))
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	sort.Strings(names)
	return names
}

func allowedNames(env *apitest.Env, key string) []string {
	var names []string
	for _, tl := range env.Registry.Allowed(env.Principal(key)) {
		names = append(names, tl.Name)
	}
	sort.Strings(names)
	return names
}

func call(t *testing.T, c *client.Client, name string, args any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(testCtx(t), req)
	require.NoError(t, err)
	return res
}

func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	require.Len(t, res.Content, 1)
	tc, ok := mcp.AsTextContent(res.Content[0])
	require.True(t, ok, "content is %T", res.Content[0])
	return tc.Text
}

// structured decodes structuredContent into a generic map.
func structured(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	require.NotNil(t, res.StructuredContent)
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// rpc posts one raw JSON-RPC message, the way a client that is not mcp-go
// would, and returns the response.
func rpc(t *testing.T, env *apitest.Env, key string, body any, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		buf, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, mcpURL(env), rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, out
}

func initializeMsg(version string) map[string]any {
	return map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{
		"protocolVersion": version, "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "raw", "version": "1"},
	}}
}
