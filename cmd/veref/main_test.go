package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/sqlstore"
)

// syncBuffer is written by the server goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// server is a `veref serve` started through run, as main does.
type server struct {
	url    string
	out    *syncBuffer
	errOut *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func startServe(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{out: &syncBuffer{}, errOut: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	if _, set := env["VEREF_MAIL"]; !set && env["VEREF_SMTP_ADDR"] == "" {
		env = maps.Clone(env)
		env["VEREF_MAIL"] = "log" // these servers have no relay; said explicitly, as production must
	}
	go func() {
		s.done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), envOf(env), strings.NewReader(""), s.out, s.errOut)
	}()
	re := regexp.MustCompile(`veref listening on (http://\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(s.out.String()); m != nil {
			s.url = m[1]
			t.Cleanup(func() { s.stop(t) })
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve exited early: %v\nstderr: %s", err, s.errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("serve did not start; stdout: %s\nstderr: %s", s.out.String(), s.errOut.String())
	return nil
}

func (s *server) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func get(t *testing.T, url string, headers ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m
}

var keyLine = regexp.MustCompile(`(?m)^VEREF_API_KEY=(vrf_test_\S+)$`)

func TestServeDevEndToEnd(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "dev.db")
	env := map[string]string{"VEREF_DATABASE_URL": db}

	s := startServe(t, env, "--dev")
	m := keyLine.FindStringSubmatch(s.out.String())
	require.NotNil(t, m, "first start prints the key: %s", s.out.String())
	key := m[1]
	_, err := auth.ParseToken(key)
	require.NoError(t, err)
	assert.Contains(t, s.out.String(), "curl", "a curl example is printed")
	assert.NotContains(t, s.errOut.String(), key, "the key must never reach the log")

	code, body := get(t, s.url+"/healthz")
	assert.Equal(t, 200, code)
	code, _ = get(t, s.url+"/readyz")
	assert.Equal(t, 200, code)
	code, body = get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+key)
	require.Equal(t, 200, code, body)
	assert.Equal(t, "demo", body["tenantId"])
	assert.Equal(t, "test", body["environment"])
	assert.Len(t, body["scopes"], len(auth.AllScopes()))
	code, body = get(t, s.url+"/v1/api/me", "x-api-key", key)
	require.Equal(t, 200, code, body)
	code, body = get(t, s.url+"/v1/api/me")
	assert.Equal(t, 401, code)
	assert.Equal(t, "AUTH_MISSING", body["code"])

	// MCP and the agent are mounted behind the same keys.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/api/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	mcpBody, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode, string(mcpBody))
	assert.Contains(t, string(mcpBody), `"protocolVersion"`)
	req, _ = http.NewRequest(http.MethodPost, s.url+"/v1/api/agent", strings.NewReader(`{"message":"hi"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	agentBody, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, 503, res.StatusCode)
	assert.Contains(t, string(agentBody), "AGENT_NOT_CONFIGURED")
	s.stop(t)

	// Shutdown flushed the usage rows of the three authenticated calls.
	st, err := openStore(context.Background(), db, sqlstore.DefaultTimeout)
	require.NoError(t, err)
	keys, _, err := st.ListAPIKeys(context.Background(), "demo", store.APIKeyFilter{}, store.Page{})
	require.NoError(t, err)
	require.Len(t, keys, 1)
	rows, _, err := st.ListUsage(context.Background(), "demo", keys[0].ID, store.Page{})
	require.NoError(t, err)
	assert.Len(t, rows, 4, "me twice, mcp, agent")
	require.NoError(t, st.Close())

	// A second start reuses the data and prints no new key.
	s2 := startServe(t, env, "--dev")
	assert.Nil(t, keyLine.FindStringSubmatch(s2.out.String()))
	assert.Contains(t, s2.out.String(), "veref admin keys create --dev")
	code, _ = get(t, s2.url+"/v1/api/me", "Authorization", "Bearer "+key)
	assert.Equal(t, 200, code, "the first key still works")
}

func admin(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"admin"}, args...), envOf(env), strings.NewReader(""), &out, &errOut)
	return out.String(), err
}

func TestAdminCommands(t *testing.T) {
	env := map[string]string{
		"VEREF_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "ops.db"),
		"API_KEY_PEPPER":     strings.Repeat("s", 40),
	}
	_, err := admin(t, env, "tenants", "create", "--id", "acme", "--name", "Acme", "--clerk-org-id", "org_acme", "--json")
	require.NoError(t, err)
	_, err = admin(t, env, "tenants", "create", "--id", "acme", "--name", "Acme")
	require.ErrorContains(t, err, "already exists")
	_, err = admin(t, env, "recruiters", "create", "--tenant", "acme", "--id", "recruiter_123", "--email", "r@acme.test", "--admin")
	require.NoError(t, err)
	_, err = admin(t, env, "recruiters", "create", "--tenant", "nope", "--id", "r", "--email", "r@x.test")
	require.ErrorContains(t, err, "tenant nope was not found")

	out, err := admin(t, env, "keys", "create", "--tenant", "acme", "--recruiter", "recruiter_123", "--name", "CI key",
		"--env", "live", "--scopes", "references:read,reports:read", "--json")
	require.NoError(t, err)
	var created struct {
		APIKey struct {
			ID     string   `json:"id"`
			Scopes []string `json:"scopes"`
			Status string   `json:"status"`
		} `json:"apiKey"`
		Plaintext string `json:"plaintext"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created), out)
	assert.True(t, strings.HasPrefix(created.Plaintext, "vrf_live_"))
	assert.Equal(t, []string{"references:read", "reports:read"}, created.APIKey.Scopes)
	assert.EqualValues(t, "active", created.APIKey.Status)

	_, err = admin(t, env, "keys", "create", "--tenant", "acme", "--recruiter", "recruiter_123", "--name", "bad", "--env", "test", "--scopes", "references:delete")
	require.ErrorContains(t, err, `unknown scope "references:delete"`)
	_, err = admin(t, env, "keys", "create", "--tenant", "acme", "--recruiter", "recruiter_123", "--name", "CI key", "--env", "test")
	require.ErrorContains(t, err, "already exists")
	_, err = admin(t, env, "keys", "create", "--tenant", "acme", "--recruiter", "recruiter_123", "--name", "old", "--env", "test", "--expires-at", "2001-01-01T00:00:00Z")
	require.ErrorContains(t, err, "future")

	s := startServe(t, env)
	code, body := get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+created.Plaintext)
	require.Equal(t, 200, code, body)
	assert.Equal(t, []any{"references:read", "reports:read"}, body["scopes"])
	code, body = get(t, s.url+"/v1/api/candidates", "Authorization", "Bearer "+created.Plaintext)
	assert.Equal(t, 403, code)
	assert.Equal(t, "SCOPE_MISSING", body["code"])

	out, err = admin(t, env, "keys", "list", "--tenant", "acme", "--json")
	require.NoError(t, err)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list, 1)
	assert.NotContains(t, out, created.Plaintext)

	_, err = admin(t, env, "keys", "revoke", "--tenant", "acme", "--id", created.APIKey.ID, "--note", "rotated")
	require.NoError(t, err)
	code, body = get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+created.Plaintext)
	assert.Equal(t, 401, code)
	assert.Equal(t, "AUTH_REVOKED_KEY", body["code"], "revocation takes effect on the next request")
	_, err = admin(t, env, "keys", "revoke", "--tenant", "acme", "--id", created.APIKey.ID)
	require.ErrorContains(t, err, "already revoked")

	out, err = admin(t, env, "keys", "list", "--tenant", "acme")
	require.NoError(t, err)
	assert.Contains(t, out, "revoked")
}

func TestConfigErrorsAreOneClearLine(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, nil, "API_KEY_PEPPER is not set"},
		{map[string]string{"API_KEY_PEPPER": "short"}, nil, "at least 32"},
		{map[string]string{"API_KEY_PEPPER": strings.Repeat("x", 32), "VEREF_DATABASE_URL": "mysql://x"}, nil, "VEREF_DATABASE_URL must start with"},
		{map[string]string{"API_KEY_PEPPER": strings.Repeat("x", 32), "CLERK_JWKS_URL": "http://x"}, nil, "CLERK_ISSUER"},
		{map[string]string{"VEREF_LOG_FORMAT": "xml"}, []string{"--dev"}, "VEREF_LOG_FORMAT"},
		{map[string]string{"CLERK_AUTHORIZED_PARTIES": "app.example.com"}, []string{"--dev"}, "CLERK_AUTHORIZED_PARTIES"},
		{map[string]string{"VEREF_REVOKE_WAIT": "-1s"}, []string{"--dev"}, "VEREF_REVOKE_WAIT must be a duration"},
		{map[string]string{"VEREF_KEY_CACHE_TTL": "soon"}, []string{"--dev"}, "VEREF_KEY_CACHE_TTL must be a duration"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"serve"}, c.args...), envOf(c.env), strings.NewReader(""), &out, &errOut)
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "\n")
	}
}

func TestDevWarnsWhenPointedAtAnotherDatabase(t *testing.T) {
	var out, errOut bytes.Buffer
	env := map[string]string{"VEREF_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "shared.db")}
	err := run(context.Background(), []string{"admin", "tenants", "create", "--dev", "--id", "x", "--name", "X"}, envOf(env), strings.NewReader(""), &out, &errOut)
	require.NoError(t, err)
	assert.Contains(t, errOut.String(), "built-in public pepper")

	errOut.Reset()
	env["API_KEY_PEPPER"] = strings.Repeat("p", 40)
	err = run(context.Background(), []string{"admin", "tenants", "create", "--dev", "--id", "y", "--name", "Y"}, envOf(env), strings.NewReader(""), &out, &errOut)
	require.NoError(t, err)
	assert.Empty(t, errOut.String(), "a real pepper needs no warning")
}

func TestRedactURLHidesPasswordsAnywhere(t *testing.T) {
	for _, u := range []string{
		"postgres://veref:s3cret@db:5432/veref?sslmode=require",
		"postgres://veref@db:5432/veref?sslmode=require&password=s3cret",
		"postgresql://db/veref?PASSWORD=s3cret&user=veref",
		"redis://:s3cret@127.0.0.1:6379/0",
	} {
		r := redactURL(u)
		assert.NotContains(t, r, "s3cret", u)
		assert.Regexp(t, `db|127\.0\.0\.1`, r, "the host stays, for the operator to read")
	}
}

func TestFailedStartIsOneLineWithoutThePassword(t *testing.T) {
	_, err := openStore(context.Background(), "postgres://veref@127.0.0.1:1,127.0.0.1:2/none?password=s3cret&connect_timeout=1&sslmode=disable", time.Second)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "\n")
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestServeRefusesToStartWithoutAMailTransport(t *testing.T) {
	env := map[string]string{"API_KEY_PEPPER": strings.Repeat("p", 48), "VEREF_DATABASE_URL": "sqlite:" + t.TempDir() + "/v.db"}
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, envOf(env), strings.NewReader(""), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "VEREF_SMTP_ADDR")
	assert.Contains(t, err.Error(), "VEREF_MAIL=log")
	assert.NotContains(t, err.Error(), "\n")
}
