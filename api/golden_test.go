package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files (api/testdata/*.golden.json) from the code")

const openAPIGolden = "testdata/openapi.golden.json"

// openAPIDocument is the document the server serves, indented, with
// nothing in it that changes from run to run.
func openAPIDocument(t *testing.T) []byte {
	t.Helper()
	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{})
	doc, err := json.MarshalIndent(e.Server.OpenAPI(), "", "  ")
	require.NoError(t, err)
	require.NotContains(t, string(doc), strings.TrimPrefix(e.URL, "http://"), "the document must not depend on the test server's address")
	return append(doc, '\n')
}

// TestOpenAPIGolden snapshots the OpenAPI document so a change to the
// public REST contract shows in review.
func TestOpenAPIGolden(t *testing.T) {
	got := openAPIDocument(t)
	assert.Equal(t, string(got), string(openAPIDocument(t)), "two servers must describe themselves identically")

	// The document served over HTTP is the same one.
	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{})
	served := e.Do("GET", "/openapi.json", "", nil)
	require.EqualValues(t, 200, served.Status)
	var a, b any
	require.NoError(t, json.Unmarshal(served.Body, &a))
	require.NoError(t, json.Unmarshal(got, &b))
	assert.Equal(t, b, a, "/openapi.json differs from Server.OpenAPI()")

	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(openAPIGolden), 0o755))
		require.NoError(t, os.WriteFile(openAPIGolden, got, 0o644))
		return
	}
	want, err := os.ReadFile(openAPIGolden)
	require.NoError(t, err, "no golden file: run `go test ./api ./tools -update` and review the diff")
	if !bytes.Equal(want, got) {
		require.Equal(t, string(want), string(got),
			"%s is out of date: the REST contract changed. Run `go test ./api ./tools -update` and review the diff.", openAPIGolden)
	}
}

// TestOpenAPIDocumentCoversTheCatalogue checks the document against the
// registry: one operation per tool, under /v1/api, with its scopes.
func TestOpenAPIDocumentCoversTheCatalogue(t *testing.T) {
	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{})
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	raw, err := json.Marshal(e.Server.OpenAPI())
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &doc))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."), doc.OpenAPI)
	ops := 0
	for path, methods := range doc.Paths {
		assert.True(t, strings.HasPrefix(path, "/v1/api/"), "%s is outside /v1/api", path)
		ops += len(methods)
	}
	for _, tool := range e.Registry.Tools() {
		op := doc.Paths["/v1/api"+tool.HTTP.Path][strings.ToLower(tool.HTTP.Method)]
		require.NotNil(t, op, "no operation for %s", tool.Name)
		assert.Equal(t, tool.Name, op["operationId"])
		scopes := []any{}
		for _, s := range tool.Policy {
			scopes = append(scopes, string(s))
		}
		assert.Equal(t, scopes, op["x-veref-scopes"], tool.Name)
	}
	require.NotNil(t, doc.Paths["/v1/api/agent"]["post"], "Ask Veref is documented")
	require.NotNil(t, doc.Paths["/v1/api/me/revoke"]["post"], "a key revoking itself is documented")
	assert.Equal(t, len(e.Registry.Tools())+2, ops, "every operation is a tool, the agent, or a key revoking itself")
}

// TestOpenAPIValidates runs an independent validator, @redocly/cli (pinned
// in testdata/openapi-validate/package-lock.json), over the document.
// Install it with api/testdata/openapi-validate/install.sh; without it the
// test skips locally and fails under CI.
func TestOpenAPIValidates(t *testing.T) {
	dir, err := filepath.Abs("testdata/openapi-validate")
	require.NoError(t, err)
	redocly := filepath.Join(dir, "node_modules", ".bin", "redocly")
	if _, err := os.Stat(redocly); err != nil {
		msg := "the OpenAPI validator is not installed: run api/testdata/openapi-validate/install.sh (needs node and npm)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	spec := filepath.Join(t.TempDir(), "openapi.json")
	require.NoError(t, os.WriteFile(spec, openAPIDocument(t), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, redocly, "lint", "--config", filepath.Join(dir, "redocly.yaml"), "--format", "stylish", spec)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "redocly lint found problems in the OpenAPI document:\n%s", out)
}
