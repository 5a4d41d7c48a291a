package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/prompts"
)

// TestOfficialTypeScriptClient drives the endpoint with the official MCP
// TypeScript SDK (pinned in e2e/package.json), so interoperability is checked
// against the reference client, not only against mcp-go talking to itself.
// Locally it skips without `e2e/install.sh`; in CI (CI set) it must run.
func TestOfficialTypeScriptClient(t *testing.T) {
	dir, err := filepath.Abs("e2e")
	require.NoError(t, err)
	missing := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI must run mcp/e2e/install.sh before go test", why)
		}
		t.Skipf("%s; run mcp/e2e/install.sh to enable this test", why)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil {
		missing("mcp/e2e/node_modules is missing")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}

	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test, auth.CandidatesRead, auth.ReportsRead, auth.ReferencesRead, auth.ValuationsRead)
	p := env.Principal(key)

	// Every allowed read tool that needs no input is called, so the SDK
	// checks each one's structuredContent against its outputSchema.
	var reads []string
	for _, tl := range env.Registry.Allowed(p) {
		if req, _ := tl.InputSchema["required"].([]any); tl.ReadOnly && len(req) == 0 && tl.Name != "whoami" {
			reads = append(reads, tl.Name)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"VEREF_MCP_URL="+mcpURL(env),
		"VEREF_API_KEY="+key,
		"VEREF_HIDDEN_TOOL="+secretTool,
		"VEREF_ECHO_TOOL="+echoTool,
		"VEREF_READ_TOOLS="+strings.Join(reads, ","),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "node client.mjs failed:\n%s", stderr.String())

	var out struct {
		ProtocolVersion *string `json:"protocolVersion"`
		SessionID       *string `json:"sessionId"`
		Server          struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"server"`
		Instructions string `json:"instructions"`
		Tools        []struct {
			Name        string         `json:"name"`
			Title       string         `json:"title"`
			Annotations map[string]any `json:"annotations"`
			InputType   string         `json:"inputType"`
			OutputType  string         `json:"outputType"`
		} `json:"tools"`
		Whoami struct {
			IsError           bool           `json:"isError"`
			StructuredContent map[string]any `json:"structuredContent"`
			Text              string         `json:"text"`
		} `json:"whoami"`
		Echo struct {
			StructuredContent map[string]any `json:"structuredContent"`
			BadIsError        bool           `json:"badIsError"`
			BadText           string         `json:"badText"`
		} `json:"echo"`
		Reads map[string]struct {
			IsError    bool   `json:"isError"`
			Structured bool   `json:"structured"`
			Text       string `json:"text"`
		} `json:"reads"`
		Hidden struct {
			Called  bool   `json:"called"`
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"hidden"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	t.Logf("client output: %s", stdout.String())
	assert.NotContains(t, stdout.String()+stderr.String(), key)

	require.NotNil(t, out.ProtocolVersion)
	assert.Contains(t, []string{"2025-06-18", "2025-11-25"}, *out.ProtocolVersion)
	assert.Nil(t, out.SessionID, "stateless: no session id")
	assert.Equal(t, "veref", out.Server.Name)
	assert.Equal(t, prompts.MCPInstructions, out.Instructions)

	var names []string
	for _, tl := range out.Tools {
		names = append(names, tl.Name)
		assert.Equal(t, "object", tl.InputType, tl.Name)
		assert.Equal(t, "object", tl.OutputType, tl.Name)
		require.NotNil(t, tl.Annotations, tl.Name)
		assert.Contains(t, tl.Annotations, "openWorldHint", tl.Name)
	}
	sort.Strings(names)
	assert.Equal(t, allowedNames(env, key), names)
	assert.Contains(t, names, "whoami")

	assert.False(t, out.Whoami.IsError, out.Whoami.Text)
	assert.Equal(t, p.KeyID, out.Whoami.StructuredContent["keyId"])
	assert.Equal(t, "test", out.Whoami.StructuredContent["environment"])
	assert.Equal(t, "acme", out.Whoami.StructuredContent["tenantId"])

	assert.Equal(t, map[string]any{"result": []any{"hi", "HI"}}, out.Echo.StructuredContent)
	assert.True(t, out.Echo.BadIsError)
	assert.Contains(t, out.Echo.BadText, "INVALID_INPUT")

	require.Len(t, out.Reads, len(reads))
	for name, r := range out.Reads {
		assert.False(t, r.IsError, "%s: %s", name, r.Text)
		assert.True(t, r.Structured, name)
	}

	assert.False(t, out.Hidden.Called, "a hidden tool must not run")
	assert.NotZero(t, out.Hidden.Code)
	assert.Contains(t, out.Hidden.Message, "not found")
}
