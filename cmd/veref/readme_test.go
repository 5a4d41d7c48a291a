package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// shellBlock is one ```sh block of the README.
type shellBlock struct {
	line int    // where it starts, for the failure message
	skip string // why it cannot run here, from <!-- readme-test: skip: why -->
	text string
}

func readmeBlocks(t *testing.T, path string) []shellBlock {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []shellBlock
	var cur *shellBlock
	skip := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur != nil && strings.HasPrefix(l, "```"):
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		case strings.HasPrefix(l, "<!-- readme-test: skip:"):
			skip = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "<!-- readme-test: skip:"), "-->"))
		case l == "```sh":
			cur = &shellBlock{line: n, skip: skip}
			skip = ""
		case strings.TrimSpace(l) != "":
			skip = "" // an annotation belongs to the block right below it
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// TestReadmeShellBlocks runs the README's shell blocks, in order and in one
// shell state, against `serve --dev`, with the veref binary on PATH. Blocks
// marked <!-- readme-test: skip: why --> are reported and not run. The one
// change made to a block is the server's address: the README says
// http://127.0.0.1:8080, the test server listens on a free port. curl fails
// on an HTTP error status, so a block whose request is refused fails.
func TestReadmeShellBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the walkthrough")
	}
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed to run the README", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "veref"), "./cmd/veref")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	db := "sqlite:" + filepath.Join(t.TempDir(), "readme.db")
	s := startServe(t, map[string]string{"VEREF_DATABASE_URL": db}, "--dev")
	key := keyLine.FindStringSubmatch(s.out.String())
	require.NotNil(t, key, s.out.String())

	state := filepath.Join(t.TempDir(), "state.sh")
	require.NoError(t, os.WriteFile(state, nil, 0o600))
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VEREF_API_KEY="+key[1], "VEREF_DATABASE_URL="+db, "VEREF_API_URL="+s.url,
		// The CLI must not find a real credential store or config here.
		"HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS=1",
	)
	ran, skipped := 0, 0
	for _, b := range readmeBlocks(t, filepath.Join(root, "README.md")) {
		if b.skip != "" {
			t.Logf("README.md:%d skipped: %s", b.line, b.skip)
			skipped++
			continue
		}
		script := "set -a -e -o pipefail\n" +
			`curl() { command curl --fail-with-body --show-error "$@"; }` + "\n" +
			". " + state + "\n" +
			strings.ReplaceAll(b.text, "http://127.0.0.1:8080", s.url) +
			"\nexport -p > " + state + "\n"
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = root
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "README.md:%d failed:\n%s\noutput:\n%s", b.line, b.text, out)
		ran++
	}
	t.Logf("%d blocks ran, %d skipped", ran, skipped)
	require.GreaterOrEqual(t, ran, 6, "the walkthrough blocks must run")
}
