package apitest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// NodeTools finds the npm tools a test runs, installed into dir (made
// absolute) by dir/install.sh, and returns dir and the tools' paths.
// Without them the test skips locally and fails under CI.
func NodeTools(t testing.TB, dir string, names ...string) (string, []string) {
	t.Helper()
	dir, err := filepath.Abs(dir)
	require.NoError(t, err)
	var bins []string
	for _, name := range names {
		bin := filepath.Join(dir, "node_modules", ".bin", name)
		if _, err := os.Stat(bin); err != nil {
			msg := name + " is not installed: run " + filepath.Join(dir, "install.sh") + " (needs node and npm)"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		bins = append(bins, bin)
	}
	return dir, bins
}
