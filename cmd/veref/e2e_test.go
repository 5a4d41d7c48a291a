package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/verefwork/veref/api/clerktest"
)

// The tests here run the built binary, as a user would: the server as a
// process, the CLI on a pseudo-terminal.

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// veref builds the binary once per test run.
func verefBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "veref-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "veref")
		if runtime.GOOS == "windows" {
			builtPath += ".exe"
		}
		out, err := exec.Command("go", "build", "-o", builtPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	require.NoError(t, buildErr, "building veref")
	return builtPath
}

// e2eEnv is a process environment with no credential store reachable
// (D-Bus pointed nowhere), so the CLI has to use the opted-in file.
func e2eEnv(t *testing.T, extra ...string) []string {
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(home, "no-dbus"), "TERM=xterm",
	}
	return append(env, extra...)
}

// devProcess is `veref serve --dev` as a process.
type devProcess struct {
	url string
	key string
	db  string // its VEREF_DATABASE_URL
	out *syncBuffer
}

func startDevProcess(t *testing.T, env []string) devProcess {
	t.Helper()
	bin := verefBinary(t)
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--dev", "--addr", "127.0.0.1:0")
	db := "sqlite:" + filepath.Join(t.TempDir(), "dev.db")
	cmd.Env = append(env, "VEREF_DATABASE_URL="+db)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	re := regexp.MustCompile(`veref listening on (http://\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			p := devProcess{url: m[1], out: out, db: db}
			if k := keyLine.FindStringSubmatch(out.String()); k != nil {
				p.key = k[1]
			}
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve --dev did not start: %s", out.String())
	return devProcess{}
}

// ptyRun starts the binary on a pseudo-terminal; read its screen with
// screen() and wait with done.
type ptyRun struct {
	screen *syncBuffer
	done   chan error
}

func startOnPTY(t *testing.T, env []string, args ...string) *ptyRun {
	t.Helper()
	cmd := exec.Command(verefBinary(t), args...)
	cmd.Env = env
	f, err := pty.Start(cmd)
	require.NoError(t, err)
	r := &ptyRun{screen: &syncBuffer{}, done: make(chan error, 1)}
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(r.screen, f); close(copied) }()
	go func() {
		err := cmd.Wait()
		<-copied // the pty reports EIO once the process is gone and its output read
		f.Close()
		r.done <- err
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return r
}

func (r *ptyRun) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(r.screen.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("never saw %s on the terminal:\n%s", re, r.screen.String())
	return nil
}

func (r *ptyRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case err := <-r.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("the command did not exit:\n%s", r.screen.String())
		return -1
	}
}

// runBinary runs the binary without a terminal.
func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(verefBinary(t), args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errOut.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

var ptyCode = regexp.MustCompile(`shows the code\s+([A-Z]{4}-[A-Z]{4})`)

func TestLoginOnATerminalEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	clerk := newE2EClerk(t)
	env := e2eEnv(t, clerk.env...)
	srv := startDevProcess(t, env)
	env = append(env, "VEREF_API_URL="+srv.url)

	// Without a credential store and without the opt-in, login explains and stops.
	_, stderr, code := runBinary(t, env, "login", "--no-browser")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS=1")

	env = append(env, "VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS=1")
	login := startOnPTY(t, env, "login", "--no-browser")
	userCode := login.waitFor(t, ptyCode)[1]
	login.waitFor(t, regexp.MustCompile(`Waiting for approval of `+userCode))
	assert.Contains(t, login.screen.String(), srv.url+"/app/cli?code="+userCode, "the URL to open is printed")
	clerk.approve(t, srv.url, userCode, map[string]any{"environment": "test"})
	require.Equal(t, 0, login.exit(t), login.screen.String())
	assert.Contains(t, login.screen.String(), "Logged in to "+srv.url)

	home := envValue(env, "XDG_CONFIG_HOME")
	path := filepath.Join(home, "veref", "credentials.json")
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	dir, _ := os.Stat(filepath.Dir(path))
	assert.Equal(t, os.FileMode(0o700), dir.Mode().Perm())
	var f credentialFile
	b, _ := os.ReadFile(path)
	require.NoError(t, json.Unmarshal(b, &f))
	key := f.Credentials[srv.url].Key
	require.True(t, strings.HasPrefix(key, "vrf_test_"), string(b))
	assert.NotContains(t, login.screen.String(), key, "the key is never shown")

	stdout, stderr, code := runBinary(t, env, "whoami", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var me map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &me))
	assert.Equal(t, "file", me["credentialSource"])
	assert.Equal(t, f.Credentials[srv.url].KeyID, me["keyId"])

	logout := startOnPTY(t, env, "logout")
	require.Equal(t, 0, logout.exit(t), logout.screen.String())
	assert.Contains(t, logout.screen.String(), "revoked key")
	_, stderr, code = runBinary(t, append(env, "VEREF_API_KEY="+key), "whoami")
	assert.Equal(t, 4, code, "the key was revoked on the server")
	assert.Contains(t, stderr, "AUTH_REVOKED_KEY")
	_, _, code = runBinary(t, env, "whoami")
	assert.Equal(t, 4, code, "and deleted here")
}

func TestLoginDeniedOnATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	// No Clerk here: the recruiter signs in with serve --dev's own identity
	// provider, through the session `veref admin session-token --dev` prints.
	env := e2eEnv(t)
	srv := startDevProcess(t, env)
	session, stderr, code := runBinary(t, append(env, "VEREF_DATABASE_URL="+srv.db),
		"admin", "session-token", "--dev", "--tenant", "demo", "--recruiter", "recruiter_demo")
	require.Equal(t, 0, code, stderr)
	env = append(env, "VEREF_API_URL="+srv.url, "VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS=1")

	login := startOnPTY(t, env, "login", "--no-browser")
	userCode := login.waitFor(t, ptyCode)[1]
	decide(t, srv.url, strings.TrimSpace(session), userCode, "deny", nil)
	assert.Equal(t, 4, login.exit(t), "a denied login is an authentication failure")
	assert.Contains(t, login.screen.String(), "denied")
	_, err := os.Stat(filepath.Join(envValue(env, "XDG_CONFIG_HOME"), "veref", "credentials.json"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "nothing was stored")
}

func envValue(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// e2eClerk is the recruiter's side: a local Clerk issuer the server
// trusts, and the workspace routes the console page calls.
type e2eClerk struct {
	iss *clerktest.Issuer
	env []string
}

func newE2EClerk(t *testing.T) e2eClerk {
	iss := clerktest.New(t)
	return e2eClerk{iss: iss, env: []string{"CLERK_JWKS_URL=" + iss.JWKSURL(), "CLERK_ISSUER=" + iss.Issuer()}}
}

func (c e2eClerk) decide(t *testing.T, base, userCode, verb string, body any) {
	t.Helper()
	decide(t, base, c.iss.Session("user_demo", "org_demo", "admin", time.Hour), userCode, verb, body)
}

// decide calls the workspace route the console page calls, with a recruiter's session.
func decide(t *testing.T, base, session, userCode, verb string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", base+"/v1/tenants/demo/cli-sessions/"+userCode+"/"+verb, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+session)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	msg, _ := io.ReadAll(res.Body)
	require.Equal(t, 200, res.StatusCode, string(msg))
}

func (c e2eClerk) approve(t *testing.T, base, userCode string, body any) {
	c.decide(t, base, userCode, "approve", body)
}

func TestWaitShowsProgressOnlyOnATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	env := e2eEnv(t)
	srv := startDevProcess(t, env)
	env = append(env, "VEREF_API_URL="+srv.url, "VEREF_API_KEY="+srv.key)
	req := filepath.Join(t.TempDir(), "req.json")
	require.NoError(t, os.WriteFile(req, []byte(`{"candidate":{"name":"Dana Scully"},"sendInvitations":true,
	  "referees":[{"name":"Walter Skinner","email":"walter@example.com","relationship":"manager"}]}`), 0o600))
	stdout, stderr, code := runBinary(t, env, "references", "start", "--json", req, "-o", "json")
	require.Equal(t, 0, code, stderr)
	var started struct {
		ID    string `json:"id"`
		Links []struct {
			URL string `json:"url"`
		} `json:"testInvitationLinks"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &started))
	require.Len(t, started.Links, 1)

	w := startOnPTY(t, env, "references", "get", started.ID, "--wait", "--interval", "100ms")
	w.waitFor(t, regexp.MustCompile(`waiting for reference request `+started.ID+`: sent`))
	body := `{"answers":[{"questionId":"q1","rating":5},{"questionId":"q2","rating":4},{"questionId":"q3","rating":5},` +
		`{"questionId":"q4","rating":5},{"questionId":"q5","text":"Rigorous"},{"questionId":"q6","text":"Delegation"}]}`
	res, err := http.Post(started.Links[0].URL+"/response", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 0, w.exit(t), w.screen.String())
	assert.Contains(t, w.screen.String(), "completed")

	// Piped, the same wait prints the result and nothing else.
	stdout, stderr, code = runBinary(t, env, "references", "get", started.ID, "--wait", "-o", "json")
	require.Equal(t, 0, code)
	assert.Empty(t, stderr)
	assert.Contains(t, stdout, `"status": "completed"`)
}
