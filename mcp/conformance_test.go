package mcp_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
)

// conformanceScenarios are the official server scenarios that apply to a
// server without the suite's fixture tools, resources and prompts.
var conformanceScenarios = []string{"server-initialize", "ping", "tools-list", "dns-rebinding-protection"}

// TestOfficialConformanceScenarios runs the official MCP conformance suite
// (pinned in conformance/package.json) against the real endpoint. The suite's
// client sends no credentials, so a loopback proxy adds the API key as a
// configured client would, leaving Host and Origin as the suite sent them.
func TestOfficialConformanceScenarios(t *testing.T) {
	dir, err := filepath.Abs("conformance")
	require.NoError(t, err)
	node := filepath.Join(dir, "node_modules", ".bin", "node")
	suite := filepath.Join(dir, "node_modules", ".bin", "conformance")
	for _, f := range []string{node, suite} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing; CI must run mcp/conformance/install.sh before go test", f)
			}
			t.Skipf("%s is missing; run mcp/conformance/install.sh to enable this test", f)
		}
	}

	env := newEnv(t, vmcp.Options{})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)
	target, err := url.Parse(env.URL)
	require.NoError(t, err)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
		r.Out.Header.Set("Authorization", "Bearer "+key)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	endpoint := "http://" + ln.Addr().String() + "/v1/api/mcp"

	summary := regexp.MustCompile(`Passed: (\d+)/(\d+), (\d+) failed`)
	for _, sc := range conformanceScenarios {
		t.Run(sc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, suite, "server", "--url", endpoint, "--scenario", sc)
			cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			runErr := cmd.Run()
			m := summary.FindStringSubmatch(out.String())
			require.NotNil(t, m, "no summary from the suite (%v):\n%s", runErr, out.String())
			passed, _ := strconv.Atoi(m[1])
			total, _ := strconv.Atoi(m[2])
			assert.Positive(t, total, "the scenario ran no checks:\n%s", out.String())
			assert.Equal(t, total, passed, "%s", out.String())
			assert.Equal(t, "0", m[3], "%s", out.String())
			assert.NoError(t, runErr, "%s", out.String())
		})
	}
}
