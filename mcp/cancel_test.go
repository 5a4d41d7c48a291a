package mcp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

// mcp-go keys a call it may cancel by session id and JSON-RPC id, and a
// stateless server's session ids are empty or whatever the client says: a
// notifications/cancelled from one tenant's key must not stop another
// tenant's call that happens to use the same id.
func TestCancellationCannotReachAnotherKeysCall(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	env := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{MCP: func(reg *tools.Registry) http.Handler {
		tools.Add(reg, tools.Spec{
			Name: "mcptest_wait", Title: "Wait", Description: "Test tool that runs until released.",
			Policy: auth.AnyOf(auth.ReportsRead), ReadOnly: true,
			HTTP: tools.Binding{Method: http.MethodGet, Path: "/mcptest/wait"},
		}, func(ctx context.Context, _ auth.Principal, _ struct{}) (pathOut, error) {
			close(started)
			<-release
			if ctx.Err() != nil {
				return pathOut{}, errors.New("cancelled")
			}
			return pathOut{Via: "finished"}, nil
		})
		return vmcp.NewHandler(reg, vmcp.Options{})
	}})
	env.Tenant("acme")
	env.Tenant("globex")
	victim := env.Key("acme", auth.Test, auth.ReportsRead)
	other := env.Key("globex", auth.Test, auth.ReportsRead)

	done := make(chan string, 1)
	go func() {
		// _meta sends the call through mcp-go, which registers it for
		// cancellation; a plain call is never registered at all.
		req, _ := http.NewRequest(http.MethodPost, mcpURL(env), strings.NewReader(
			`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"mcptest_wait","_meta":{"progressToken":"p"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+victim)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- string(b)
	}()
	<-started
	res, _ := rpc(t, env, other, []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}`))
	assert.Equal(t, http.StatusAccepted, res.StatusCode)
	close(release)
	body := <-done
	require.Contains(t, body, `finished`, "%s", body)
}
