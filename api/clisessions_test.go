package api_test

import (
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/api/clerktest"
	"github.com/verefwork/veref/store"
)

type cliEnv struct {
	mgmt
	clock *atomic.Int64
}

func newCLIEnv(t *testing.T, st store.Store) cliEnv {
	iss := clerktest.New(t)
	var clock atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
	e := apitest.New(t, st, apitest.Options{Clerk: api.NewClerkVerifier(iss.JWKSURL(), iss.Issuer(), nil), Now: now})
	e.Tenant("acme")
	e.Tenant("globex")
	return cliEnv{mgmt: mgmt{Env: e, iss: iss}, clock: &clock}
}

func (c cliEnv) advance(d time.Duration) { c.clock.Add(int64(d)) }

func (c cliEnv) start(t *testing.T, host string) api.CLIAuthorization {
	t.Helper()
	r := c.Do("POST", "/v1/cli/sessions", "", map[string]any{"clientName": "veref test", "hostname": host})
	require.EqualValues(t, 201, r.Status, string(r.Body))
	var a api.CLIAuthorization
	r.Decode(t, &a)
	return a
}

func (c cliEnv) poll(device string) apitest.Response {
	return c.Do("POST", "/v1/cli/sessions/token", "", map[string]any{"deviceCode": device})
}

func TestCLILoginApproveRedeemOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		c := newCLIEnv(t, st)
		a := c.start(t, "dana-laptop")
		assert.Regexp(t, regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`), a.UserCode)
		assert.Equal(t, c.URL+"/app/cli", a.VerificationURI)
		assert.Equal(t, c.URL+"/app/cli?code="+a.UserCode, a.VerificationURIComplete)
		assert.Equal(t, 600, a.ExpiresIn)
		assert.Equal(t, 2, a.Interval)
		assert.GreaterOrEqual(t, len(a.DeviceCode), 40)

		r := c.poll(a.DeviceCode)
		assert.EqualValues(t, 400, r.Status)
		assert.Equal(t, "authorization_pending", r.Code())

		// The recruiter sees the request, by the code typed any way.
		admin := c.iss.Session("user_acme", "org_acme", "admin", time.Hour)
		typed := strings.ToLower(strings.ReplaceAll(a.UserCode, "-", ""))
		r = c.call("GET", "/v1/tenants/acme/cli-sessions/"+typed, admin, nil)
		require.EqualValues(t, 200, r.Status, string(r.Body))
		assert.Equal(t, "dana-laptop", r.JSON()["hostname"])
		assert.Equal(t, "pending", r.JSON()["status"])
		assert.Equal(t, "CLI on dana-laptop", r.JSON()["keyName"])

		r = c.call("POST", "/v1/tenants/acme/cli-sessions/"+a.UserCode+"/approve", admin,
			map[string]any{"environment": "test", "scopes": []string{"references:read", "candidates:read"}})
		require.EqualValues(t, 200, r.Status, string(r.Body))
		assert.Equal(t, "approved", r.JSON()["status"])
		r = c.call("POST", "/v1/tenants/acme/cli-sessions/"+a.UserCode+"/deny", admin, nil)
		assert.EqualValues(t, 409, r.Status, "a decision is final")

		c.advance(3 * time.Second)
		r = c.poll(a.DeviceCode)
		require.EqualValues(t, 200, r.Status, string(r.Body))
		var login api.CLILogin
		r.Decode(t, &login)
		assert.Equal(t, "acme", login.TenantID)
		assert.Equal(t, "CLI on dana-laptop", login.APIKey.Name)
		assert.Equal(t, "acme_recruiter", login.APIKey.RecruiterID)
		assert.Equal(t, []string{"references:read", "candidates:read"}, login.APIKey.Scopes)
		me := c.Do("GET", "/v1/api/me", login.Plaintext, nil)
		require.EqualValues(t, 200, me.Status)
		assert.Equal(t, "test", me.JSON()["environment"])

		// Redeemed twice: the second poll gets nothing.
		r = c.poll(a.DeviceCode)
		assert.EqualValues(t, 400, r.Status)
		assert.Equal(t, "expired_token", r.Code())
		assert.NotContains(t, string(r.Body), "vrf_")

		// A second login from the same host gets a unique name.
		b := c.start(t, "dana-laptop")
		r = c.call("POST", "/v1/tenants/acme/cli-sessions/"+b.UserCode+"/approve", admin, map[string]any{"environment": "live"})
		require.EqualValues(t, 200, r.Status, string(r.Body))
		r = c.poll(b.DeviceCode)
		require.EqualValues(t, 200, r.Status, string(r.Body))
		r.Decode(t, &login)
		assert.Equal(t, "CLI on dana-laptop (2)", login.APIKey.Name)
		assert.Empty(t, login.APIKey.Scopes, "all scopes by default")

		// Every step is audited: issued, approved, redeemed.
		events, _, err := st.ListAudit(t.Context(), store.Tenancy{TenantID: "acme", Environment: "test"}, store.AuditFilter{}, store.Page{Limit: 50})
		require.NoError(t, err)
		actions := map[string]int{}
		for _, e := range events {
			actions[e.Action]++
		}
		assert.Equal(t, 1, actions["cli_session.approve"])
		assert.Equal(t, 1, actions["cli_session.redeem"])
		assert.Equal(t, 1, actions["api_key.create"])
		issued, _, err := st.ListAudit(t.Context(), store.Tenancy{}, store.AuditFilter{Action: "cli_session.issue"}, store.Page{Limit: 50})
		require.NoError(t, err)
		assert.Len(t, issued, 2)
	})
}

func TestCLILoginEdgeCases(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		c := newCLIEnv(t, st)
		admin := c.iss.Session("user_acme", "org_acme", "admin", time.Hour)
		globex := c.iss.Session("user_globex", "org_globex", "admin", time.Hour)
		approve := func(session, tenant, code string) apitest.Response {
			return c.call("POST", "/v1/tenants/"+tenant+"/cli-sessions/"+code+"/approve", session, map[string]any{"environment": "test"})
		}

		t.Run("polled too fast", func(t *testing.T) {
			a := c.start(t, "fast")
			assert.Equal(t, "authorization_pending", c.poll(a.DeviceCode).Code())
			r := c.poll(a.DeviceCode)
			assert.Equal(t, "slow_down", r.Code())
			assert.Contains(t, r.JSON()["detail"], "7 seconds", "the interval grows by 5 seconds")
			c.advance(8 * time.Second)
			assert.Equal(t, "authorization_pending", c.poll(a.DeviceCode).Code())
		})
		t.Run("denied", func(t *testing.T) {
			a := c.start(t, "denied")
			r := c.call("POST", "/v1/tenants/acme/cli-sessions/"+a.UserCode+"/deny", admin, nil)
			require.EqualValues(t, 200, r.Status, string(r.Body))
			assert.Equal(t, "denied", r.JSON()["status"])
			assert.Equal(t, "access_denied", c.poll(a.DeviceCode).Code())
			r = approve(admin, "acme", a.UserCode)
			assert.EqualValues(t, 409, r.Status, "a denied request cannot be approved after: %s", r.Body)
			events, _, err := st.ListAudit(t.Context(), store.Tenancy{TenantID: "acme", Environment: "live"}, store.AuditFilter{Action: "cli_session.deny"}, store.Page{})
			require.NoError(t, err)
			assert.Len(t, events, 1)
		})
		t.Run("expired", func(t *testing.T) {
			a := c.start(t, "slow-human")
			b := c.start(t, "approved-too-late")
			require.EqualValues(t, 200, approve(admin, "acme", b.UserCode).Status)
			c.advance(11 * time.Minute)
			assert.Equal(t, "expired_token", c.poll(a.DeviceCode).Code())
			assert.Equal(t, "expired_token", c.poll(b.DeviceCode).Code(), "an approval not collected in time expires too")
			r := approve(admin, "acme", a.UserCode)
			assert.EqualValues(t, 409, r.Status)
			assert.Contains(t, string(r.Body), "expired")
			r = c.call("GET", "/v1/tenants/acme/cli-sessions/"+a.UserCode, admin, nil)
			assert.Equal(t, "expired", r.JSON()["status"])
		})
		t.Run("another session's code", func(t *testing.T) {
			a := c.start(t, "mine")
			b := c.start(t, "theirs")
			require.EqualValues(t, 200, approve(admin, "acme", b.UserCode).Status)
			c.advance(3 * time.Second)
			assert.Equal(t, "authorization_pending", c.poll(a.DeviceCode).Code(), "approving b gives a nothing")
			assert.Equal(t, "expired_token", c.poll("not-a-device-code").Code())
			assert.Equal(t, "expired_token", c.poll(b.UserCode).Code(), "the user code is not a device code")
			assert.EqualValues(t, 200, c.poll(b.DeviceCode).Status)
		})
		t.Run("another tenant", func(t *testing.T) {
			a := c.start(t, "cross")
			require.EqualValues(t, 200, approve(admin, "acme", a.UserCode).Status)
			assert.EqualValues(t, 404, c.call("GET", "/v1/tenants/globex/cli-sessions/"+a.UserCode, globex, nil).Status)
			assert.EqualValues(t, 404, c.call("POST", "/v1/tenants/globex/cli-sessions/"+a.UserCode+"/deny", globex, nil).Status)
			assert.EqualValues(t, 404, approve(admin, "globex", a.UserCode).Status, "acme's session cannot act on globex")
			assert.EqualValues(t, 404, c.call("GET", "/v1/tenants/acme/cli-sessions/BBBB-BBBB", admin, nil).Status)
			assert.EqualValues(t, 404, c.call("GET", "/v1/tenants/acme/cli-sessions/AEIO-U000", admin, nil).Status)
		})
		t.Run("no session", func(t *testing.T) {
			a := c.start(t, "anon")
			r := c.Do("POST", "/v1/tenants/acme/cli-sessions/"+a.UserCode+"/approve", "", map[string]any{"environment": "test"})
			assert.EqualValues(t, 401, r.Status)
			assert.Equal(t, "authorization_pending", c.poll(a.DeviceCode).Code())
		})
		t.Run("bad input", func(t *testing.T) {
			r := c.Do("POST", "/v1/cli/sessions", "", map[string]any{"hostname": "evil\u202eexe.com"})
			assert.EqualValues(t, 422, r.Status)
			assert.Contains(t, string(r.Body), "hostname")
			r = c.Do("POST", "/v1/cli/sessions", "", map[string]any{"hostname": "a\x1b[2Jb"})
			assert.EqualValues(t, 422, r.Status)
			r = c.Do("POST", "/v1/cli/sessions", "", nil)
			assert.EqualValues(t, 201, r.Status, "the body is optional")
			a := c.start(t, "scopes")
			r = c.call("POST", "/v1/tenants/acme/cli-sessions/"+a.UserCode+"/approve", admin, map[string]any{"environment": "test", "scopes": []string{"nope:nope"}})
			assert.EqualValues(t, 422, r.Status)
			r = c.call("POST", "/v1/tenants/acme/cli-sessions/"+a.UserCode+"/approve", admin, map[string]any{"environment": "prod"})
			assert.EqualValues(t, 422, r.Status)
			assert.Equal(t, "pending", c.call("GET", "/v1/tenants/acme/cli-sessions/"+a.UserCode, admin, nil).JSON()["status"],
				"a refused approval leaves the request pending")
		})
	})
}

func TestKeyRevokesItself(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.Key("acme", "test", "references:read")
		other := e.Key("acme", "test")
		r := e.Do("POST", "/v1/api/me/revoke", key, nil)
		require.EqualValues(t, 200, r.Status, string(r.Body))
		assert.Equal(t, "revoked", r.JSON()["status"], "no scope is needed")
		assert.EqualValues(t, 401, e.Do("GET", "/v1/api/me", key, nil).Status)
		r = e.Do("POST", "/v1/api/me/revoke", key, nil)
		assert.Equal(t, "AUTH_REVOKED_KEY", r.Code())
		assert.EqualValues(t, 200, e.Do("GET", "/v1/api/me", other, nil).Status, "only the calling key is revoked")

		p := e.Principal(other)
		events, _, err := st.ListAudit(t.Context(), store.Tenancy{TenantID: "acme", Environment: "test"}, store.AuditFilter{Action: "api_key.revoke"}, store.Page{})
		require.NoError(t, err)
		require.Len(t, events, 1)
		assert.EqualValues(t, store.ActorAPIKey, events[0].ActorKind)
		assert.Equal(t, events[0].TargetID, events[0].ActorID, "the key revoked itself")
		assert.NotEqual(t, p.KeyID, events[0].TargetID)
	})
}
