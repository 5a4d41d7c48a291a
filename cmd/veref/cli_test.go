package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
)

func runCLI(env map[string]string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, envOf(env), strings.NewReader(""), &out, &errOut)
	if err != nil {
		printError(&errOut, err)
	}
	return out.String(), errOut.String(), exitCode(err)
}

// everyCommand is the path of every command of the tree, root included.
func everyCommand() [][]string {
	var paths [][]string
	var walk func(cmd *cobra.Command, path []string)
	walk = func(cmd *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range cmd.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	root := (&cli{getenv: envOf(nil)}).rootCmd()
	root.InitDefaultCompletionCmd()
	walk(root, nil)
	return paths
}

func TestEveryCommandHasHelpOnStdoutAndRefusesUnknownFlags(t *testing.T) {
	paths := everyCommand()
	require.Greater(t, len(paths), 25, "the whole tree is walked")
	for _, p := range paths {
		name := strings.Join(append([]string{"veref"}, p...), " ")
		out, errOut, code := runCLI(nil, append(p, "--help")...)
		assert.Equal(t, 0, code, name)
		assert.Contains(t, out, "Usage:", name)
		assert.Empty(t, errOut, name)

		out, errOut, code = runCLI(nil, append(p, "--no-such-flag")...)
		assert.Equal(t, 2, code, name)
		assert.Empty(t, out, name)
		assert.Contains(t, errOut, "unknown flag: --no-such-flag", name)
		assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %s", errOut)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"nosuchcommand"},
		{"references", "nosuchverb"},
		{"references", "get"},
		{"references", "get", "a", "b"},
		{"whoami", "extra"},
		{"whoami", "-o", "yaml"},
		{"mcp", "extra"},
		{"admin", "keys", "create", "--dev", "--tenant", "demo"},
		{"admin", "keys", "create", "--dev", "--tenant", "demo", "--recruiter", "r", "--name", "n", "--env", "test", "--expires-at", "soon"},
	} {
		db := "sqlite:" + filepath.Join(t.TempDir(), "dev.db")
		_, errOut, code := runCLI(map[string]string{"VEREF_API_KEY": "vrf_test_x", "VEREF_DATABASE_URL": db, "API_KEY_PEPPER": strings.Repeat("p", 40)}, args...)
		assert.Equal(t, 2, code, "%v: %s", args, errOut)
		assert.True(t, strings.HasPrefix(errOut, "veref: "), errOut)
		assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	out, _, code := runCLI(nil, "--version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "veref "+buildVersion()+"\n", out)
	assert.NotEmpty(t, buildVersion())

	for shell, marker := range map[string]string{
		"bash": "__start_veref", "zsh": "#compdef veref", "fish": "complete -c veref", "powershell": "Register-ArgumentCompleter",
	} {
		out, errOut, code := runCLI(nil, "completion", shell)
		assert.Equal(t, 0, code, shell)
		assert.Empty(t, errOut, shell)
		assert.Contains(t, out, marker, shell)
	}
}

func TestAuthenticationFailuresExitFourWithCodeAndTrace(t *testing.T) {
	_, errOut, code := runCLI(map[string]string{}, "whoami")
	assert.Equal(t, 4, code)
	assert.Contains(t, errOut, "VEREF_API_KEY is not set")

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(401)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": 401, "code": "AUTH_REVOKED_KEY", "title": "Unauthorized",
			"detail": "this key was revoked\non \u202epurpose\x1b[2J", "traceId": "trace-abc"})
	}))
	defer srv.Close()
	tok, err := auth.NewToken(auth.Test)
	require.NoError(t, err)
	_, errOut, code = runCLI(map[string]string{"VEREF_API_KEY": tok.String(), "VEREF_API_URL": srv.URL}, "whoami", "-o", "json")
	assert.Equal(t, 4, code, errOut)
	assert.Equal(t, "veref: AUTH_REVOKED_KEY (401): this key was revoked on \\u202epurpose\\x1b[2J [trace trace-abc]\n", errOut)
}

func TestTableEscapesControlAndBidiCharacters(t *testing.T) {
	var out bytes.Buffer
	raw := json.RawMessage(`{"data":[{"id":"c1","name":"Eve\u001b[2J\u001b]0;pwned\u0007","email":"a\u202eexe.txt","role":"x\ny\tz\r"}]}`)
	require.NoError(t, printResult(&out, raw, false, candidateCols))
	s := out.String()
	assert.NotContains(t, s, "\x1b")
	assert.NotContains(t, s, "\u202e")
	assert.NotContains(t, s, "\a")
	assert.Contains(t, s, `Eve\x1b[2J\x1b]0;pwned\x07`)
	assert.Contains(t, s, `a\u202eexe.txt`)
	assert.Contains(t, s, `x\ny\tz\r`)
	assert.Equal(t, 2, strings.Count(s, "\n"), "one header and one row: %q", s)
}
