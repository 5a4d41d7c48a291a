package tools

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files (tools/testdata/*.golden.json) from the code")

// catalogueEntry is the public contract of one tool: what MCP clients,
// models and the REST adapter are given.
type catalogueEntry struct {
	Name         string         `json:"name"`
	Title        string         `json:"title"`
	Description  string         `json:"description"`
	Scopes       []auth.Scope   `json:"scopes"`
	Hints        catalogueHints `json:"hints"`
	HTTP         catalogueHTTP  `json:"http"`
	AuditTarget  string         `json:"auditTarget"`
	InputSchema  map[string]any `json:"inputSchema"`
	OutputSchema map[string]any `json:"outputSchema"`
}

type catalogueHTTP struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
}

type catalogueHints struct {
	ReadOnly    bool `json:"readOnly"`
	Mutates     bool `json:"mutates"`
	Destructive bool `json:"destructive"`
	OpenWorld   bool `json:"openWorld"`
	Idempotent  bool `json:"idempotent"`
}

// TestCatalogueGolden snapshots the whole tool catalogue so a change to the
// public contract shows in review.
func TestCatalogueGolden(t *testing.T) {
	hasher, err := auth.NewHasher([]byte("golden-pepper-golden-pepper-golden-pepper"))
	require.NoError(t, err)
	reg := New(NewRegistry(storetest.OpenSQLite(t), nil), Deps{Hasher: hasher})

	entries := []catalogueEntry{}
	for _, tool := range reg.Tools() {
		scopes := tool.Policy
		if scopes == nil {
			scopes = []auth.Scope{}
		}
		entries = append(entries, catalogueEntry{
			Name: tool.Name, Title: tool.Title, Description: tool.Description, Scopes: scopes,
			Hints:       catalogueHints{ReadOnly: tool.ReadOnly, Mutates: tool.Mutates, Destructive: tool.Destructive, Idempotent: tool.Idempotent, OpenWorld: tool.OpenWorld},
			HTTP:        catalogueHTTP{Method: tool.HTTP.Method, Path: "/v1/api" + tool.HTTP.Path, Status: tool.HTTP.Status},
			AuditTarget: tool.Target,
			InputSchema: tool.InputSchema, OutputSchema: tool.OutputSchema,
		})
	}
	got, err := json.MarshalIndent(entries, "", "  ")
	require.NoError(t, err)
	checkGolden(t, filepath.Join("testdata", "catalogue.golden.json"), append(got, '\n'))
}

// checkGolden compares got with the file, or rewrites the file with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "no golden file: run `go test ./api ./tools -update` and review the diff")
	if !bytes.Equal(want, got) {
		require.Equal(t, string(want), string(got),
			"%s is out of date: the public contract changed. Run `go test ./api ./tools -update` and review the diff.", path)
	}
}
