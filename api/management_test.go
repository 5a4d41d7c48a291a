package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/api/clerktest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
)

type mgmt struct {
	*apitest.Env
	iss *clerktest.Issuer
}

func newMgmt(t *testing.T, st store.Store, maxKeys int) mgmt {
	iss := clerktest.New(t)
	e := apitest.New(t, st, apitest.Options{Clerk: api.NewClerkVerifier(iss.JWKSURL(), iss.Issuer(), nil), MaxActiveKeys: maxKeys})
	e.Tenant("acme")
	e.Tenant("globex")
	require.NoError(t, st.CreateRecruiter(context.Background(), store.Recruiter{ID: "acme_member", TenantID: "acme",
		Email: "m@acme.test", ClerkUserID: "user_member", CreatedAt: time.Now()}))
	return mgmt{Env: e, iss: iss}
}

func (m mgmt) as(token string) string { return "Bearer " + token }

func (m mgmt) call(method, path, session string, body any) apitest.Response {
	return m.Do(method, path, "", body, "Authorization", "Bearer "+session)
}

func TestKeyManagementLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		m := newMgmt(t, st, 100)
		admin := m.iss.Session("user_acme", "org_acme", "admin", time.Hour)
		member := m.iss.SessionV2("user_member", "org_acme", "member", time.Hour)
		base := "/v1/tenants/acme/api-keys"

		r := m.call("POST", base, member, map[string]any{"name": "Zapier sync", "environment": "test", "scopes": []string{"references:read"}})
		require.EqualValues(t, 201, r.Status, string(r.Body))
		var created api.CreatedKey
		r.Decode(t, &created)
		assert.True(t, strings.HasPrefix(created.Plaintext, "vrf_test_"))
		assert.Equal(t, "acme_member", created.APIKey.RecruiterID)
		assert.EqualValues(t, "active", created.APIKey.Status)
		assert.Equal(t, []string{"references:read"}, created.APIKey.Scopes)

		me := m.Do("GET", "/v1/api/me", created.Plaintext, nil)
		require.EqualValues(t, 200, me.Status)
		assert.Equal(t, "acme_member", me.JSON()["recruiterId"])

		r = m.call("POST", base, admin, map[string]any{"name": "Admin live", "environment": "live"})
		require.EqualValues(t, 201, r.Status, string(r.Body))
		var adminKey api.CreatedKey
		r.Decode(t, &adminKey)

		// Members see their own keys; admins see all, and get shows no secret.
		r = m.call("GET", base, member, nil)
		require.EqualValues(t, 200, r.Status)
		assert.Len(t, r.JSON()["data"], 1)
		r = m.call("GET", base, admin, nil)
		assert.Len(t, r.JSON()["data"], 2)
		assert.NotContains(t, string(r.Body), created.Plaintext)
		r = m.call("GET", base+"/"+adminKey.APIKey.ID, member, nil)
		assert.EqualValues(t, 404, r.Status, "a member cannot see another's key")
		r = m.call("DELETE", base+"/"+adminKey.APIKey.ID, member, map[string]any{"note": "x"})
		assert.EqualValues(t, 404, r.Status, "nor revoke it")

		// Usage of the member's key.
		m.Do("GET", "/v1/api/references", created.Plaintext, nil)
		m.FlushUsage()
		r = m.call("GET", base+"/"+created.APIKey.ID+"/usage", member, nil)
		require.EqualValues(t, 200, r.Status)
		assert.Len(t, r.JSON()["data"], 2)
		r = m.call("GET", base+"/"+created.APIKey.ID, member, nil)
		assert.NotEmpty(t, r.JSON()["lastUsedAt"])

		r = m.Do("DELETE", base+"/"+created.APIKey.ID, "", map[string]any{"note": "rotating", "revokedBy": "someone_else"},
			"Authorization", "Bearer "+member)
		assert.EqualValues(t, 422, r.Status, "the revoker comes from the session, never the body: unknown fields are refused")
		r = m.call("DELETE", base+"/"+created.APIKey.ID, member, map[string]any{"note": "rotating"})
		require.EqualValues(t, 200, r.Status, string(r.Body))
		assert.Equal(t, "revoked", r.JSON()["status"])
		assert.Equal(t, "acme_member", r.JSON()["revokedBy"])
		assert.Equal(t, "rotating", r.JSON()["revokeNote"])
		me = m.Do("GET", "/v1/api/me", created.Plaintext, nil)
		assert.EqualValues(t, 401, me.Status)
		assert.EqualValues(t, problem.AuthRevokedKey, me.Code())
		r = m.call("DELETE", base+"/"+created.APIKey.ID, admin, nil)
		assert.EqualValues(t, 409, r.Status, "revocation is permanent and happens once")

		evs, _, err := st.ListAudit(context.Background(), store.Tenancy{TenantID: "acme", Environment: auth.Test}, store.AuditFilter{TargetID: created.APIKey.ID}, store.Page{})
		require.NoError(t, err)
		var actions []string
		for _, ev := range evs {
			actions = append(actions, ev.Action)
			assert.EqualValues(t, store.ActorRecruiter, ev.ActorKind)
			assert.Equal(t, "acme_member", ev.ActorID)
		}
		assert.ElementsMatch(t, []string{"api_key.create", "api_key.revoke"}, actions)
	})
}

func TestKeyManagementRules(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		m := newMgmt(t, st, 3)
		admin := m.iss.Session("user_acme", "org_acme", "admin", time.Hour)
		base := "/v1/tenants/acme/api-keys"
		bad := []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"name": "ab", "environment": "test"}, "name"},
			{map[string]any{"name": strings.Repeat("n", 51), "environment": "test"}, "name"},
			{map[string]any{"name": "ok name", "environment": "prod"}, "environment"},
			{map[string]any{"name": "ok name", "environment": "test", "scopes": []string{"references:delete"}}, "scopes"},
			{map[string]any{"name": "ok name", "environment": "test", "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"},
		}
		for _, b := range bad {
			r := m.call("POST", base, admin, b.body)
			assert.EqualValues(t, 422, r.Status, "%v: %s", b.body, r.Body)
			assert.Equal(t, "INVALID_INPUT", r.Code())
			assert.Contains(t, string(r.Body), b.field)
		}
		r := m.call("POST", base, admin, map[string]any{"name": "ok name", "environment": "test", "scopes": []string{"references:delete"}})
		assert.Contains(t, r.JSON()["detail"], "references:delete", "the unknown scope is named")

		for i := 0; i < 3; i++ {
			r := m.call("POST", base, admin, map[string]any{"name": "key " + string(rune('a'+i)), "environment": "test"})
			require.EqualValues(t, 201, r.Status, string(r.Body))
		}
		r = m.call("POST", base, admin, map[string]any{"name": "key a", "environment": "live"})
		assert.EqualValues(t, 409, r.Status, "names are unique per tenant")
		r = m.call("POST", base, admin, map[string]any{"name": "key d", "environment": "test"})
		assert.EqualValues(t, 409, r.Status)
		assert.Contains(t, r.JSON()["detail"], "3 active keys")
	})
}

func TestKeyManagementSessions(t *testing.T) {
	m := newMgmt(t, openSQLite(t), 100)
	base := "/v1/tenants/acme/api-keys"
	r := m.Do("GET", base, "", nil)
	assert.EqualValues(t, 401, r.Status)
	assert.EqualValues(t, problem.AuthMissing, r.Code())

	expired := m.iss.Session("user_acme", "org_acme", "admin", -time.Hour)
	r = m.call("GET", base, expired, nil)
	assert.EqualValues(t, 401, r.Status)
	assert.Equal(t, "AUTH_INVALID_SESSION", r.Code())

	apiKey := m.Key("acme", auth.Test)
	r = m.call("GET", base, apiKey, nil)
	assert.EqualValues(t, 401, r.Status, "an API key cannot manage keys")

	other := m.iss.Session("user_globex", "org_globex", "admin", time.Hour)
	r = m.call("GET", base, other, nil)
	assert.EqualValues(t, 404, r.Status, "another organization's tenant does not exist for you")

	stranger := m.iss.Session("user_nobody", "org_acme", "member", time.Hour)
	r = m.call("GET", base, stranger, nil)
	assert.EqualValues(t, 403, r.Status)
	assert.Contains(t, r.JSON()["hint"], "veref admin recruiters create")

	// An org admin by claim manages every key even if the recruiter row is not admin.
	orgAdmin := m.iss.SessionV2("user_member", "org_acme", "admin", time.Hour)
	r = m.call("POST", base, m.iss.Session("user_acme", "org_acme", "admin", time.Hour), map[string]any{"name": "owner key", "environment": "test"})
	require.EqualValues(t, 201, r.Status)
	r = m.call("GET", base, orgAdmin, nil)
	assert.Len(t, r.JSON()["data"], 2, "the apitest key and the owner key")

	_, inSpec := m.Server.OpenAPI().Paths["/v1/tenants/{tenant}/api-keys"]
	assert.False(t, inSpec, "management routes stay out of the /v1/api spec")
}

// The console sends Clerk's __session cookie instead of a header; a cookie
// rides along on cross-site requests too, so changes need same-origin.
func TestKeyManagementSessionCookie(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		m := newMgmt(t, st, 100)
		member := m.iss.SessionV2("user_member", "org_acme", "member", time.Hour)
		base := "/v1/tenants/acme/api-keys"
		cookie := "__session=" + member
		body := map[string]any{"name": "From the console", "environment": "test"}

		r := m.Do("GET", base, "", nil, "Cookie", cookie)
		require.EqualValues(t, 200, r.Status, string(r.Body))

		r = m.Do("POST", base, "", body, "Cookie", cookie)
		assert.EqualValues(t, 401, r.Status, "a cookie on a change without Sec-Fetch-Site could be a forged cross-site request")
		r = m.Do("POST", base, "", body, "Cookie", cookie, "Sec-Fetch-Site", "cross-site")
		assert.EqualValues(t, 401, r.Status, string(r.Body))
		r = m.Do("POST", base, "", body, "Cookie", cookie, "Sec-Fetch-Site", "same-origin")
		require.EqualValues(t, 201, r.Status, string(r.Body))

		// The header wins: a bad bearer is not rescued by a good cookie.
		r = m.Do("GET", base, "", nil, "Cookie", cookie, "Authorization", "Bearer not-a-jwt")
		assert.EqualValues(t, 401, r.Status)
		r = m.Do("GET", base, "", nil, "Cookie", "__session=not-a-jwt")
		assert.EqualValues(t, 401, r.Status)
		assert.Equal(t, "AUTH_INVALID_SESSION", r.Code())
	})
}
