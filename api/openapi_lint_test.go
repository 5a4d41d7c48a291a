package api_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/store/storetest"
)

// TestOpenAPILint runs both linters the issue names, Redocly (its
// recommended rules) and Spectral (spectral:oas), over both documents the
// server serves, as served. Any error or warning fails the test; a rule
// turned off must say why in redocly.yaml or .spectral.yaml. Install them
// with api/testdata/openapi-lint/install.sh; without them the test skips
// locally and fails under CI.
func TestOpenAPILint(t *testing.T) {
	dir, bins := apitest.NodeTools(t, "testdata/openapi-lint", "redocly", "spectral")
	redocly, spectral := bins[0], bins[1]
	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{})
	for name, path := range map[string]string{"integration": "/openapi.json", "workspace": "/v1/tenants/openapi.json"} {
		t.Run(name, func(t *testing.T) {
			res, err := http.Get(e.URL + path)
			require.NoError(t, err)
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			require.NoError(t, err)
			require.Equal(t, 200, res.StatusCode, path)
			spec := filepath.Join(t.TempDir(), name+".json")
			require.NoError(t, os.WriteFile(spec, body, 0o644))

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			env := append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
			cmd := exec.CommandContext(ctx, redocly, "lint", "--config", filepath.Join(dir, "redocly.yaml"),
				"--format", "stylish", "--max-problems", "200", spec)
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "redocly lint %s:\n%s", path, out)
			require.False(t, regexp.MustCompile(`\d+:\d+\s+warning\s`).Match(out), "redocly warnings on %s:\n%s", path, out)

			cmd = exec.CommandContext(ctx, spectral, "lint", "--ruleset", filepath.Join(dir, ".spectral.yaml"),
				"--fail-severity", "warn", spec)
			cmd.Dir, cmd.Env = dir, env
			out, err = cmd.CombinedOutput()
			require.NoError(t, err, "spectral lint %s:\n%s", path, out)
		})
	}
}
