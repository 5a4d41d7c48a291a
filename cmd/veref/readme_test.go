package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
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

// readmeRunner runs README shell blocks in order and in one shell state
// (each block's exported variables reach the next), in dir with env. The
// one change made to a block is the server's address: the README says
// http://127.0.0.1:8080, the test server listens at url. curl fails on an
// HTTP error status, so a block whose request is refused fails, as does any
// failing command or pipeline stage.
type readmeRunner struct {
	dir, url, state string
	env             []string
}

func newReadmeRunner(t *testing.T, dir, url string, env []string) *readmeRunner {
	state := filepath.Join(t.TempDir(), "state.sh")
	require.NoError(t, os.WriteFile(state, nil, 0o600))
	return &readmeRunner{dir: dir, url: url, state: state, env: env}
}

// runAll runs every block of the README at path but those marked
// <!-- readme-test: skip: why -->, which it logs, and stops at the first
// block that fails, naming it.
func (r *readmeRunner) runAll(t *testing.T, path string) (ran, skipped int, err error) {
	for _, b := range readmeBlocks(t, path) {
		if b.skip != "" {
			t.Logf("%s:%d skipped: %s", filepath.Base(path), b.line, b.skip)
			skipped++
			continue
		}
		script := "set -a -e -o pipefail\n" +
			`curl() { command curl --fail-with-body --show-error "$@"; }` + "\n" +
			". " + r.state + "\n" +
			strings.ReplaceAll(b.text, "http://127.0.0.1:8080", r.url) +
			"\nexport -p > " + r.state + "\n"
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir, cmd.Env = r.dir, r.env
		if out, err := cmd.CombinedOutput(); err != nil {
			return ran, skipped, fmt.Errorf("%s:%d failed: %w\n%s\noutput:\n%s", filepath.Base(path), b.line, err, b.text, out)
		}
		ran++
	}
	return ran, skipped, nil
}

// needTools skips (fails under CI) without the programs README blocks use.
func needTools(t *testing.T, tools ...string) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed to run the README", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// TestReadmeShellBlocks runs the README's shell blocks against
// `serve --dev`, with the veref binary on PATH.
func TestReadmeShellBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the walkthrough")
	}
	needTools(t, "bash", "curl", "jq")
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

	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VEREF_API_KEY="+key[1], "VEREF_DATABASE_URL="+db, "VEREF_API_URL="+s.url,
		// The CLI must not find a real credential store or config here.
		"HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS=1",
	)
	ran, skipped, err := newReadmeRunner(t, root, s.url, env).runAll(t, filepath.Join(root, "README.md"))
	require.NoError(t, err)
	t.Logf("%d blocks ran, %d skipped", ran, skipped)
	require.GreaterOrEqual(t, ran, 6, "the walkthrough blocks must run")
}

// TestReadmeRunnerCatchesFailures feeds the runner READMEs with one broken
// block each: it must fail on that block, by its line, and run nothing
// after it; a block marked skipped is not run at all.
func TestReadmeRunnerCatchesFailures(t *testing.T) {
	needTools(t, "bash", "curl")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			http.Error(w, `{"code":"NOT_FOUND"}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	// Block 1 exports X and block 2 reads it; block 3 is the broken one
	// (its ```sh is line 8); block 4 would leave a mark if it ran.
	const head = "```sh\nX=1\ncurl -s http://127.0.0.1:8080/ok\n```\n```sh\ntest \"$X\" = 1\n```\n```sh\n"
	for name, broken := range map[string]string{
		"failing command":       "false",
		"failure mid-block":     "false\necho carried on",
		"failing pipeline step": "false | cat",
		"unknown command":       "veref-no-such-command",
		"HTTP error status":     "curl -s http://127.0.0.1:8080/missing",
		"unset state":           "test \"$Y\" = 1",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			readme := filepath.Join(dir, "README.md")
			mark := filepath.Join(dir, "ran")
			require.NoError(t, os.WriteFile(readme, []byte(head+broken+"\n```\n```sh\ntouch "+mark+"\n```\n"), 0o600))
			ran, _, err := newReadmeRunner(t, dir, srv.URL, os.Environ()).runAll(t, readme)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "README.md:8 failed")
			assert.Equal(t, 2, ran)
			assert.NoFileExists(t, mark)
		})
	}

	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("<!-- readme-test: skip: broken on purpose -->\n```sh\nfalse\n```\n```sh\ntrue\n```\n"), 0o600))
	ran, skipped, err := newReadmeRunner(t, dir, srv.URL, os.Environ()).runAll(t, readme)
	require.NoError(t, err)
	assert.Equal(t, [2]int{1, 1}, [2]int{ran, skipped})
}
