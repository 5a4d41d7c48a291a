package problem_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/problem"
)

var update = flag.Bool("update", false, "rewrite the README's error table and docs/errors.md from the code table")

const (
	tableBegin = "<!-- errors:begin (generated from problem/codes.go: go test ./problem -update) -->\n"
	tableEnd   = "<!-- errors:end -->"
)

// The README's error table and docs/errors.md come from the one table, so
// neither can drift from what the server answers.
func TestErrorDocsMatchTheTable(t *testing.T) {
	readme := filepath.Join("..", "README.md")
	b, err := os.ReadFile(readme)
	require.NoError(t, err)
	s := string(b)
	start, end := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	require.True(t, start >= 0 && end > start, "README.md has the generated error table between its markers")
	want := s[:start+len(tableBegin)] + problem.MarkdownTable() + s[end:]

	ref := filepath.Join("..", "docs", "errors.md")
	if *update {
		require.NoError(t, os.WriteFile(readme, []byte(want), 0o644))
		require.NoError(t, os.MkdirAll(filepath.Dir(ref), 0o755))
		require.NoError(t, os.WriteFile(ref, []byte(problem.MarkdownReference()), 0o644))
		return
	}
	assert.Equal(t, want, s, "README.md's error table is out of date: run go test ./problem -update")
	got, err := os.ReadFile(ref)
	require.NoError(t, err)
	assert.Equal(t, problem.MarkdownReference(), string(got), "docs/errors.md is out of date: run go test ./problem -update")
	for _, in := range problem.All() {
		assert.Contains(t, string(got), "\n## "+string(in.Code)+"\n", "docs/errors.md has a section for %s", in.Code)
		assert.Contains(t, s, "`"+string(in.Code)+"`", "README lists %s", in.Code)
	}
}
