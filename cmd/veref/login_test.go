package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"github.com/verefwork/veref/api/clerktest"
)

// TestMain keeps every in-process test off the real credential store:
// go-keyring's mock provider stands in for it.
func TestMain(m *testing.M) {
	keyring.MockInit()
	os.Exit(m.Run())
}

// loginServer is serve --dev with Clerk verification pointed at a local
// issuer, so tests can approve logins as the demo recruiter.
type loginServer struct {
	*server
	iss *clerktest.Issuer
}

func startLoginServer(t *testing.T) loginServer {
	iss := clerktest.New(t)
	s := startServe(t, map[string]string{
		"VEREF_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "dev.db"),
		"CLERK_JWKS_URL":     iss.JWKSURL(), "CLERK_ISSUER": iss.Issuer(),
	}, "--dev")
	return loginServer{server: s, iss: iss}
}

// decide approves (with body) or denies (body nil) the login whose code
// the CLI printed, as the demo recruiter.
func (s loginServer) decide(t *testing.T, code string, body any) *http.Response {
	t.Helper()
	verb := "deny"
	var b []byte
	if body != nil {
		verb = "approve"
		b, _ = json.Marshal(body)
	}
	req, err := http.NewRequest("POST", s.url+"/v1/tenants/demo/cli-sessions/"+code+"/"+verb, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.iss.Session("user_demo", "org_demo", "admin", time.Hour))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res
}

var userCodeLine = regexp.MustCompile(`shows the code\s+([A-Z]{4}-[A-Z]{4})`)

// runLogin starts `veref login --no-browser` and returns the user code it
// printed and a channel with its result.
func runLogin(t *testing.T, env map[string]string, args ...string) (code string, stdout *syncBuffer, done chan error) {
	code, stdout, _, done = runLoginErr(t, env, args...)
	return code, stdout, done
}

func runLoginErr(t *testing.T, env map[string]string, args ...string) (code string, stdout, stderr *syncBuffer, done chan error) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done = make(chan error, 1)
	go func() {
		done <- run(context.Background(), append([]string{"login", "--no-browser"}, args...), envOf(env), strings.NewReader(""), stdout, stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := userCodeLine.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stdout, stderr, done
		}
		select {
		case err := <-done:
			t.Fatalf("login ended before printing a code: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("login printed no code: %s", stderr.String())
	return
}

func wait(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("login did not finish")
		return nil
	}
}

func TestLoginKeychainWhoamiLogout(t *testing.T) {
	keyring.MockInit()
	s := startLoginServer(t)
	env := map[string]string{"VEREF_API_URL": s.url}

	code, out, done := runLogin(t, env, "-o", "json")
	res := s.decide(t, code, map[string]any{"environment": "test", "scopes": []string{"references:read"}})
	require.Equal(t, 200, res.StatusCode)
	require.NoError(t, wait(t, done))
	var login loginResult
	require.NoError(t, json.Unmarshal([]byte(out.String()), &login), out.String())
	assert.Equal(t, "demo", login.TenantID)
	assert.Equal(t, "keychain", login.CredentialSource)
	assert.True(t, strings.HasPrefix(login.KeyName, "CLI on "))
	assert.NotContains(t, out.String(), "vrf_test_", "the key is never printed")

	stored, err := keyring.Get("veref", s.url)
	require.NoError(t, err, "the key is in the credential store under service veref and the API URL")
	assert.True(t, strings.HasPrefix(stored, "vrf_test_"))

	stdout, stderr, code2 := runCLI(env, "whoami", "-o", "json")
	require.Equal(t, 0, code2, stderr)
	var me map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &me))
	assert.Equal(t, "keychain", me["credentialSource"])
	assert.Equal(t, login.KeyID, me["keyId"])
	assert.Equal(t, []any{"references:read"}, me["scopes"])
	stdout, _, _ = runCLI(env, "whoami")
	assert.Contains(t, stdout, "Credential: keychain")

	// VEREF_API_KEY wins over the keychain.
	devKey := keyLine.FindStringSubmatch(s.out.String())[1]
	stdout, _, _ = runCLI(map[string]string{"VEREF_API_URL": s.url, "VEREF_API_KEY": devKey}, "whoami", "--json")
	assert.Contains(t, stdout, `"credentialSource": "env"`)
	assert.NotContains(t, stdout, login.KeyID)

	stdout, stderr, code2 = runCLI(env, "logout")
	require.Equal(t, 0, code2, stderr)
	assert.Contains(t, stdout, "revoked key")
	_, err = keyring.Get("veref", s.url)
	assert.ErrorIs(t, err, keyring.ErrNotFound)
	code2, body := get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+stored)
	assert.Equal(t, 401, code2)
	assert.Equal(t, "AUTH_REVOKED_KEY", body["code"], "logout revoked the key on the server")

	_, stderr, code2 = runCLI(env, "whoami")
	assert.Equal(t, 4, code2)
	assert.Contains(t, stderr, "not logged in to "+s.url)
	stdout, _, code2 = runCLI(env, "logout")
	assert.Equal(t, 0, code2)
	assert.Contains(t, stdout, "Not logged in")
}

func TestLoginDenied(t *testing.T) {
	keyring.MockInit()
	s := startLoginServer(t)
	env := map[string]string{"VEREF_API_URL": s.url, "VEREF_APP_URL": "https://console.example.test/app"}
	code, _, stderr, done := runLoginErr(t, env)
	assert.Contains(t, stderr.String(), "https://console.example.test/app/cli?code="+code, "VEREF_APP_URL names the console to open")
	code2, _, stderr2, done2 := runLoginErr(t, env, "--app-url", "https://flag.example.test/")
	assert.Contains(t, stderr2.String(), "https://flag.example.test/cli?code="+code2, "the flag beats the variable")
	require.Equal(t, 200, s.decide(t, code2, nil).StatusCode)
	require.Error(t, wait(t, done2))
	require.Equal(t, 200, s.decide(t, code, nil).StatusCode)
	err := wait(t, done)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "denied")
	assert.Equal(t, 4, exitCode(err))
	_, err = keyring.Get("veref", s.url)
	assert.ErrorIs(t, err, keyring.ErrNotFound, "nothing was stored")
}

func TestLoginWithoutACredentialStore(t *testing.T) {
	keyring.MockInitWithError(errors.New("org.freedesktop.secrets was not provided by any service files"))
	t.Cleanup(keyring.MockInit)
	s := startLoginServer(t)
	cfg := t.TempDir()
	env := map[string]string{"VEREF_API_URL": s.url, "XDG_CONFIG_HOME": cfg}

	// Without the opt-in, login stops before asking for anything and explains both ways out.
	_, stderr, code := runCLI(env, "login", "--no-browser")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "VEREF_API_KEY")
	assert.Contains(t, stderr, "VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS=1")
	assert.NotContains(t, stderr, "shows the code", "no login was started")

	env["VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS"] = "1"
	userCode, _, done := runLogin(t, env)
	require.Equal(t, 200, s.decide(t, userCode, map[string]any{"environment": "test"}).StatusCode)
	require.NoError(t, wait(t, done))

	path := filepath.Join(cfg, "veref", "credentials.json")
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	dir, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dir.Mode().Perm())
	var f credentialFile
	b, _ := os.ReadFile(path)
	require.NoError(t, json.Unmarshal(b, &f))
	entry := f.Credentials[s.url]
	assert.True(t, strings.HasPrefix(entry.Key, "vrf_test_"))
	assert.NotEmpty(t, entry.KeyID)
	assert.False(t, entry.StoredAt.IsZero())

	stdout, stderr, code := runCLI(env, "whoami", "-o", "json")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, `"credentialSource": "file"`)

	// A file others can read is refused.
	require.NoError(t, os.Chmod(path, 0o644))
	_, stderr, code = runCLI(env, "whoami")
	assert.Equal(t, 4, code)
	assert.Contains(t, stderr, "others can read")
	require.NoError(t, os.Chmod(path, 0o600))

	stdout, stderr, code = runCLI(env, "logout")
	require.Equal(t, 0, code, stderr)
	b, _ = os.ReadFile(path)
	assert.NotContains(t, string(b), entry.Key)
	code, body := get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+entry.Key)
	assert.Equal(t, 401, code, body)
}

// TestPollLoginFollowsTheServer drives the polling loop with each answer
// RFC 8628 allows, plus a server hiccup, and checks the CLI's pace.
func TestPollLoginFollowsTheServer(t *testing.T) {
	pollUnit = 10 * time.Millisecond
	t.Cleanup(func() { pollUnit = time.Second })
	answers := []struct {
		status int
		code   string
	}{{503, "UNAVAILABLE"}, {400, "authorization_pending"}, {400, "slow_down"}, {400, "authorization_pending"}, {200, ""}}
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var in struct{ DeviceCode string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if r.URL.Path != "/v1/cli/sessions/token" || in.DeviceCode != "dev-code" {
			http.Error(w, "unexpected "+r.URL.Path, 500)
			return
		}
		a := answers[len(times)]
		times = append(times, time.Now())
		if a.status == 200 {
			_, _ = w.Write([]byte(`{"apiKey":{"id":"key_1","name":"CLI on h","prefix":"p","environment":"test"},"plaintext":"vrf_test_x","tenantId":"demo"}`))
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(a.status)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": a.status, "code": a.code, "title": "x", "type": "about:blank"})
	}))
	defer srv.Close()
	c := &cli{getenv: envOf(nil), stderr: io.Discard}
	login, err := c.pollLogin(context.Background(), &apiClient{base: srv.URL, http: newHTTPClient()},
		cliAuthorization{DeviceCode: "dev-code", UserCode: "BBBB-CCCC", Interval: 2, ExpiresIn: 600})
	require.NoError(t, err)
	assert.Equal(t, "vrf_test_x", login.Plaintext)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, times, 5, "a 503 is waited out, pending and slow_down keep polling")
	assert.GreaterOrEqual(t, times[3].Sub(times[2]), 7*pollUnit, "after slow_down the interval grows by 5")
}

func TestPollLoginStopsOnDenialAndExpiry(t *testing.T) {
	pollUnit = time.Millisecond
	t.Cleanup(func() { pollUnit = time.Second })
	for code, want := range map[string]string{"access_denied": "denied", "expired_token": "expired"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(400)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": 400, "code": code, "title": "x", "type": "about:blank"})
		}))
		c := &cli{getenv: envOf(nil), stderr: io.Discard}
		_, err := c.pollLogin(context.Background(), &apiClient{base: srv.URL, http: newHTTPClient()},
			cliAuthorization{DeviceCode: "d", UserCode: "BBBB-CCCC", Interval: 1, ExpiresIn: 600})
		srv.Close()
		require.Error(t, err, code)
		assert.Contains(t, err.Error(), want)
		assert.Equal(t, 4, exitCode(err), code)
	}
}
