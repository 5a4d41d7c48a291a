package mcp_test

import (
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
)

// An MCP client on an address outside the key's allowlist cannot even
// initialize; one inside it works as usual.
func TestMCPAllowlistByClientAddress(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.KeyWith("acme", auth.Test, api.LimitsChange{AllowedIPs: []string{"127.0.0.2/32"}})
	from := func(ip string) *client.Client {
		c, err := client.NewStreamableHttpClient(mcpURL(env),
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key}),
			transport.WithHTTPBasicClient(apitest.From(ip)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.Start(testCtx(t)))
		return c
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "veref-limits-test", Version: "1"}

	outside := from("127.0.0.3")
	_, err := outside.Initialize(testCtx(t), init)
	require.Error(t, err, "mcp-go reports the 4xx without its body; the raw request below reads it")

	inside := from("127.0.0.2")
	_, err = inside.Initialize(testCtx(t), init)
	require.NoError(t, err)
	res, err := inside.CallTool(testCtx(t), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
	require.NoError(t, err)
	assert.False(t, res.IsError)

	// Raw, the refusal is the same problem document as on REST.
	r := env.DoWith(apitest.From("127.0.0.3"), "POST", vmcp.EndpointPath, key,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "Accept", "application/json, text/event-stream")
	assert.Equal(t, 403, r.Status)
	assert.Equal(t, "IP_NOT_ALLOWED", r.Code())
}
