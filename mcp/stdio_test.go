package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/prompts"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// syncBuffer records what the proxy writes, read after it stops.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeStdioForwardsToTheRemote(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test, auth.ReportsRead)
	p := env.Principal(key)

	serverIn, clientOut := io.Pipe()
	clientIn, serverOut := io.Pipe()
	var wire, logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := vmcp.ServeStdio(ctx, serverIn, io.MultiWriter(serverOut, &wire),
			vmcp.Remote{BaseURL: env.URL, APIKey: key, Version: "9.9.9", Log: &logs})
		_ = serverOut.Close()
		done <- err
	}()

	c := client.NewClient(transport.NewIO(clientIn, clientOut, nil))
	require.NoError(t, c.Start(ctx))
	hello := mcp.InitializeRequest{}
	hello.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	hello.Params.ClientInfo = mcp.Implementation{Name: "local", Version: "1"}
	info, err := c.Initialize(ctx, hello)
	require.NoError(t, err)
	assert.Equal(t, "veref", info.ServerInfo.Name)
	assert.Equal(t, prompts.MCPInstructions, info.Instructions, "the remote's instructions are passed on")

	listed, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tl := range listed.Tools {
		names = append(names, tl.Name)
	}
	sort.Strings(names)
	assert.Equal(t, allowedNames(env, key), names, "the proxy lists what the remote lists for this key")

	res := call(t, c, "whoami", nil)
	require.False(t, res.IsError, text(t, res))
	assert.Equal(t, p.KeyID, structured(t, res)["keyId"])

	res = call(t, c, echoTool, map[string]any{"text": "hi"})
	require.False(t, res.IsError, text(t, res))
	assert.Equal(t, map[string]any{"result": []any{"hi", "HI"}}, structured(t, res))

	res = call(t, c, echoTool, map[string]any{})
	require.True(t, res.IsError)
	assert.Contains(t, text(t, res), problem.InvalidInput, "the remote's tool errors come back unchanged")

	req := mcp.CallToolRequest{}
	req.Params.Name = secretTool
	_, err = c.CallTool(ctx, req)
	require.Error(t, err, "a tool the remote did not list cannot be called through the proxy")

	// Calls went to the remote as this key, on the MCP surface.
	env.FlushAudits() // reads are audited in batches
	events, _, err := env.Store.ListAudit(ctx, store.TenancyOf(p), store.AuditFilter{Surface: string(tools.SurfaceMCP)}, store.Page{Limit: 100})
	require.NoError(t, err)
	assert.Len(t, events, 3)

	// Revocation reaches the proxy on its next call.
	_, err = env.Keys.Revoke(ctx, "acme", p.KeyID, "", api.Actor{Kind: store.ActorOperator, ID: "test"})
	require.NoError(t, err)
	res = call(t, c, "whoami", nil)
	require.True(t, res.IsError)
	assert.Contains(t, text(t, res), "AUTH_")

	require.NoError(t, c.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("ServeStdio did not stop when its input closed")
	}
	assert.NotContains(t, wire.String(), key, "the key never reaches the local client")
	assert.NotContains(t, logs.String(), key, "the key is never logged")
}

func TestServeStdioRefusesBadConfiguration(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)
	ctx := testCtx(t)
	run := func(r vmcp.Remote) error {
		return vmcp.ServeStdio(ctx, strings.NewReader(""), io.Discard, r)
	}

	assert.ErrorContains(t, run(vmcp.Remote{BaseURL: env.URL}), "no API key")
	err := run(vmcp.Remote{BaseURL: "http://api.veref.example", APIKey: key})
	assert.ErrorContains(t, err, "https")
	assert.ErrorContains(t, run(vmcp.Remote{BaseURL: "ftp://x", APIKey: key}), "not an http(s) URL")

	revoked := env.Key("acme", auth.Test)
	_, err = env.Keys.Revoke(ctx, "acme", env.Principal(revoked).KeyID, "", api.Actor{Kind: store.ActorOperator, ID: "test"})
	require.NoError(t, err)
	err = run(vmcp.Remote{BaseURL: env.URL, APIKey: revoked})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "API key was refused")
	assert.NotContains(t, err.Error(), revoked)

	r := vmcp.Remote{BaseURL: env.URL, APIKey: key}
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s", r, r, r, r)} {
		assert.NotContains(t, s, key)
	}
}

// A client that pipes its requests and closes its input (a script) still
// gets every answer: the end of input waits for calls under way.
func TestServeStdioAnswersPipedRequestsBeforeExiting(t *testing.T) {
	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)
	in := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"candidates_list","arguments":{"limit":0}}}`,
	}, "\n") // no final newline: the last request must still be answered
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, vmcp.ServeStdio(ctx, strings.NewReader(in), &out, vmcp.Remote{BaseURL: env.URL, APIKey: key}))

	answers := map[float64]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var msg map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &msg), line)
		if id, ok := msg["id"].(float64); ok {
			answers[id] = msg
		}
	}
	require.Contains(t, answers, float64(2), out.String())
	require.Contains(t, answers[2], "result", "whoami answered, not cancelled: %v", answers[2])
	require.Contains(t, answers, float64(3), out.String())
	res := answers[3]["result"].(map[string]any)
	assert.Equal(t, true, res["isError"], "the remote's validation error comes back as a tool result")
}
