package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dev identity provider end to end: serve --dev publishes its JWKS and
// accepts the sessions `admin session-token --dev` prints; a server without
// --dev neither publishes nor accepts them.
func TestDevSessionsAndKeyLifecycleCommands(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "dev.db")
	env := map[string]string{"VEREF_DATABASE_URL": db}
	s := startServe(t, env, "--dev")
	assert.Contains(t, s.out.String(), s.url+"/app/", "the console URL is printed")
	key := keyLine.FindStringSubmatch(s.out.String())[1]

	code, jwks := get(t, s.url+"/v1/dev/jwks.json")
	require.Equal(t, 200, code)
	assert.NotEmpty(t, jwks["keys"])

	token, err := admin(t, env, "session-token", "--dev", "--tenant", "demo", "--recruiter", "recruiter_demo", "--ttl", "10m")
	require.NoError(t, err)
	token = strings.TrimSpace(token)
	code, body := get(t, s.url+"/v1/tenants/demo/api-keys", "Authorization", "Bearer "+token)
	require.Equal(t, 200, code, body)
	keys := body["data"].([]any)
	require.Len(t, keys, 1)
	id := keys[0].(map[string]any)["id"].(string)

	member, err := admin(t, env, "session-token", "--dev", "--tenant", "demo", "--recruiter", "recruiter_member")
	require.NoError(t, err)
	code, body = get(t, s.url+"/v1/tenants/demo/api-keys", "Authorization", "Bearer "+strings.TrimSpace(member))
	require.Equal(t, 200, code, body)
	assert.Empty(t, body["data"], "the member sees none of the admin's keys")

	_, err = admin(t, env, "session-token", "--dev", "--tenant", "demo", "--recruiter", "nobody")
	assert.ErrorContains(t, err, "not found")
	_, err = admin(t, env, "session-token", "--dev", "--tenant", "demo", "--recruiter", "recruiter_demo", "--ttl", "48h")
	assert.ErrorContains(t, err, "24h")
	pepper := map[string]string{"VEREF_DATABASE_URL": db, "API_KEY_PEPPER": "veref-development-pepper-never-use-in-production"}
	_, err = admin(t, pepper, "session-token", "--tenant", "demo", "--recruiter", "recruiter_demo")
	assert.ErrorContains(t, err, "--dev")

	// Operators suspend, resume and roll from the CLI; the server sees each.
	_, err = admin(t, env, "keys", "suspend", "--dev", "--tenant", "demo", "--id", id, "--note", "incident 42")
	require.NoError(t, err)
	code, body = get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+key)
	assert.Equal(t, 401, code)
	assert.Equal(t, "AUTH_SUSPENDED_KEY", body["code"])
	_, err = admin(t, env, "keys", "resume", "--dev", "--tenant", "demo", "--id", id)
	require.NoError(t, err)
	code, _ = get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+key)
	assert.Equal(t, 200, code)
	_, err = admin(t, env, "keys", "roll", "--dev", "--tenant", "demo", "--id", id, "--grace-hours", "200")
	assert.Error(t, err)
	out, err := admin(t, env, "keys", "roll", "--dev", "--tenant", "demo", "--id", id, "--grace-hours", "0", "--json")
	require.NoError(t, err)
	var rolled struct {
		Plaintext string `json:"plaintext"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rolled), out)
	code, body = get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+key)
	assert.Equal(t, "AUTH_EXPIRED_KEY", body["code"], "grace 0 ends the old secret on the next request")
	code, _ = get(t, s.url+"/v1/api/me", "Authorization", "Bearer "+rolled.Plaintext)
	assert.Equal(t, 200, code)

	code, body = get(t, s.url+"/v1/tenants/demo/audit-events?surface=cli", "Authorization", "Bearer "+token)
	require.Equal(t, 200, code, body)
	assert.Len(t, body["data"], 3, "suspend, resume and roll by the operator")
	s.stop(t)

	// The same database served without --dev: no JWKS, and dev sessions are not believed.
	prod := startServe(t, pepper)
	code, _ = get(t, prod.url+"/v1/dev/jwks.json")
	assert.NotEqual(t, 200, code)
	code, body = get(t, prod.url+"/v1/tenants/demo/api-keys", "Authorization", "Bearer "+token)
	assert.Equal(t, 503, code, "no Clerk configured: sessions are not verified at all, %v", body)
}
