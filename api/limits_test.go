package api_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
)

// movable is a clock tests move instead of sleeping.
type movable struct{ d atomic.Int64 }

func (m *movable) Now() time.Time            { return time.Now().Add(time.Duration(m.d.Load())) }
func (m *movable) Move(d time.Duration)      { m.d.Add(int64(d)) }
func rate(n int, per string) *auth.RateLimit { return &auth.RateLimit{Requests: n, Per: per} }

func TestRateLimitOnEverySurface(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		clock := &movable{}
		e := apitest.New(t, st, apitest.Options{Now: clock.Now})
		e.Tenant("acme")
		key := e.KeyWith("acme", auth.Test, api.LimitsChange{RateLimit: rate(5, "minute")})

		// The burst is the whole minute's quota; every answer says what is left.
		for i := range 5 {
			r := e.Do("GET", "/v1/api/me", key, nil)
			require.EqualValues(t, 200, r.Status, "request %d", i+1)
			assert.Equal(t, `"default";q=5;w=60`, r.Header.Get("RateLimit-Policy"))
			assert.Regexp(t, `^"default";r=`+string(rune('0'+4-i))+`;t=\d+$`, r.Header.Get("RateLimit"))
		}
		r := e.Do("GET", "/v1/api/me", key, nil)
		require.EqualValues(t, 429, r.Status)
		assert.Equal(t, string(problem.RateLimited), r.Code())
		assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
		assert.Equal(t, "12", r.Header.Get("Retry-After"), "one emission interval: 60s / 5")
		assert.Equal(t, `"default";q=5;w=60`, r.Header.Get("RateLimit-Policy"))
		assert.Regexp(t, `^"default";r=0;t=60$`, r.Header.Get("RateLimit"))

		// The same bucket covers MCP and the agent.
		assert.EqualValues(t, 429, e.Do("POST", "/v1/api/agent", key, map[string]any{"question": "hi"}).Status)
		assert.EqualValues(t, 429, e.Do("GET", "/v1/api/nowhere", key, nil).Status)

		// Twelve seconds later one request fits again, and only one.
		clock.Move(12 * time.Second)
		assert.EqualValues(t, 200, e.Do("GET", "/v1/api/me", key, nil).Status)
		assert.EqualValues(t, 429, e.Do("GET", "/v1/api/me", key, nil).Status)

		// Another key has its own bucket, with the server's default.
		other := e.Key("acme", auth.Test)
		r = e.Do("GET", "/v1/api/me", other, nil)
		require.EqualValues(t, 200, r.Status)
		assert.Equal(t, `"default";q=600;w=60`, r.Header.Get("RateLimit-Policy"))
		assert.Equal(t, `"default";r=599;t=1`, r.Header.Get("RateLimit"))
		me := r.JSON()
		assert.Equal(t, map[string]any{"requests": float64(600), "per": "minute"}, me["rateLimit"])

		// Refused requests are still usage rows.
		e.FlushUsage()
		rows, _, err := st.ListUsage(context.Background(), "acme", e.Principal(key).KeyID, store.Page{Limit: 100})
		require.NoError(t, err)
		statuses := map[int]int{}
		for _, u := range rows {
			statuses[u.Status]++
		}
		assert.Equal(t, 6, statuses[200])
		assert.Equal(t, 4, statuses[429])
	})
}

func TestAuthFailuresAreThrottledPerAddress(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		clock := &movable{}
		e := apitest.New(t, st, apitest.Options{Now: clock.Now,
			Limits: api.Limits{AuthFailures: auth.RateLimit{Requests: 3, Per: "minute"}}})
		e.Tenant("acme")
		good := e.Key("acme", auth.Test)
		prober, bystander := apitest.From("127.0.0.4"), apitest.From("127.0.0.5")
		unknown := func() string { tok, _ := auth.NewToken(auth.Test); return tok.String() }

		for range 3 {
			assert.EqualValues(t, 401, e.DoWith(prober, "GET", "/v1/api/me", unknown(), nil).Status)
		}
		r := e.DoWith(prober, "GET", "/v1/api/me", unknown(), nil)
		assert.EqualValues(t, 429, r.Status)
		assert.Equal(t, string(problem.RateLimited), r.Code())
		assert.Equal(t, "20", r.Header.Get("Retry-After"))
		r = e.DoWith(prober, "GET", "/v1/api/me", "", nil, "Authorization", "Basic eDp5")
		assert.EqualValues(t, 429, r.Status, "malformed credentials count too")
		r = e.DoWith(prober, "GET", "/v1/api/me", good, nil)
		assert.EqualValues(t, 429, r.Status, "while throttled even a right guess learns nothing")
		assert.EqualValues(t, 401, e.DoWith(prober, "GET", "/v1/api/me", "", nil).Status, "no credential is not a guess")

		// Other addresses are not affected, and time heals.
		assert.EqualValues(t, 200, e.DoWith(bystander, "GET", "/v1/api/me", good, nil).Status)
		assert.EqualValues(t, 401, e.DoWith(bystander, "GET", "/v1/api/me", unknown(), nil).Status)
		clock.Move(20 * time.Second)
		assert.EqualValues(t, 200, e.DoWith(prober, "GET", "/v1/api/me", good, nil).Status)
		assert.EqualValues(t, 401, e.DoWith(prober, "GET", "/v1/api/me", unknown(), nil).Status)
		assert.EqualValues(t, 429, e.DoWith(prober, "GET", "/v1/api/me", unknown(), nil).Status)
	})
}

func TestAllowlistRefusesOtherAddresses(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.KeyWith("acme", auth.Live, api.LimitsChange{AllowedIPs: []string{"127.0.0.2/32", "2001:db8::/32"}})
		open := e.Key("acme", auth.Live)
		inside, outside := apitest.From("127.0.0.2"), apitest.From("127.0.0.3")
		p := e.Principal(key)

		r := e.DoWith(inside, "GET", "/v1/api/me", key, nil)
		require.EqualValues(t, 200, r.Status, string(r.Body))
		assert.Equal(t, []any{"127.0.0.2/32", "2001:db8::/32"}, r.JSON()["allowedIps"])

		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/api/me"}, {"GET", "/v1/api/candidates"}, {"POST", "/v1/api/agent"}, {"GET", "/v1/api/nowhere"},
		} {
			r = e.DoWith(outside, c.method, c.path, key, map[string]any{"question": "hi"})
			require.EqualValues(t, 403, r.Status, c.path)
			assert.Equal(t, string(problem.IPNotAllowed), r.Code())
			hint, _ := r.JSON()["hint"].(string)
			assert.Contains(t, hint, "vrf_live_"+p.KeyPrefix)
			assert.NotContains(t, string(r.Body), "127.0.0.2", "the list is never shown")
			assert.NotContains(t, string(r.Body), "2001:db8")
			auditID, _ := r.JSON()["auditId"].(string)
			require.NotEmpty(t, auditID)
		}
		assert.EqualValues(t, 200, e.DoWith(outside, "GET", "/v1/api/me", open, nil).Status, "an empty list allows any address")

		events, _, err := st.ListAudit(context.Background(), store.Tenancy{TenantID: "acme", Environment: auth.Live},
			store.AuditFilter{Action: "request"}, store.Page{Limit: 50})
		require.NoError(t, err)
		require.Len(t, events, 4)
		for _, ev := range events {
			assert.EqualValues(t, string(problem.IPNotAllowed), ev.Outcome)
			assert.Equal(t, p.KeyID, ev.ActorID)
		}
	})
}

func TestTrustedProxiesDecideTheClientAddress(t *testing.T) {
	trusted, err := api.ParseTrustedProxies("127.0.0.6/32, 10.0.0.0/8")
	require.NoError(t, err)
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{Limits: api.Limits{ClientIP: api.ClientIP{Trusted: trusted}}})
		e.Tenant("acme")
		key := e.KeyWith("acme", auth.Live, api.LimitsChange{AllowedIPs: []string{"203.0.113.0/24"}})
		proxy, stranger := apitest.From("127.0.0.6"), apitest.From("127.0.0.7")
		xff := func(v string) []string { return []string{"X-Forwarded-For", v} }
		assert.EqualValues(t, 200, e.DoWith(proxy, "GET", "/v1/api/me", key, nil, xff("203.0.113.9")...).Status)
		assert.EqualValues(t, 200, e.DoWith(proxy, "GET", "/v1/api/me", key, nil, xff("198.51.100.1, 203.0.113.9, 10.1.2.3")...).Status,
			"the first untrusted hop from the right")
		assert.EqualValues(t, 403, e.DoWith(proxy, "GET", "/v1/api/me", key, nil, xff("203.0.113.9, 198.51.100.1")...).Status,
			"a client cannot prepend an allowed address")
		assert.EqualValues(t, 403, e.DoWith(stranger, "GET", "/v1/api/me", key, nil, xff("203.0.113.9")...).Status,
			"headers from untrusted peers are ignored")
	})
}

func TestKeyLimitsAtCreationAndByPatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		m := newMgmt(t, st, 100)
		m.Tenant("initech")
		admin := m.iss.Session("user_acme", "org_acme", "admin", time.Hour)
		member := m.iss.SessionV2("user_member", "org_acme", "member", time.Hour)
		base := "/v1/tenants/acme/api-keys"

		r := m.call("POST", base, member, map[string]any{"name": "bad list", "environment": "test",
			"allowedIps": []string{"203.0.113.0/24", "not-an-ip"}})
		require.EqualValues(t, 422, r.Status, string(r.Body))
		assert.Contains(t, string(r.Body), "allowedIps[1]")
		assert.Contains(t, string(r.Body), "not-an-ip")
		r = m.call("POST", base, member, map[string]any{"name": "greedy", "environment": "test",
			"rateLimit": map[string]any{"requests": 100, "per": "second"}})
		assert.EqualValues(t, 403, r.Status, "members cannot exceed the default")

		r = m.call("POST", base, member, map[string]any{"name": "slow one", "environment": "test", "scopes": []string{"references:read"},
			"rateLimit": map[string]any{"requests": 2, "per": "minute"}, "allowedIps": []string{"127.0.0.0/8"}})
		require.EqualValues(t, 201, r.Status, string(r.Body))
		var created api.CreatedKey
		r.Decode(t, &created)
		assert.Equal(t, rate(2, "minute"), created.APIKey.RateLimit)
		assert.Equal(t, []string{"127.0.0.0/8"}, created.APIKey.AllowedIPs)
		path := base + "/" + created.APIKey.ID

		assert.EqualValues(t, 200, m.Do("GET", "/v1/api/me", created.Plaintext, nil).Status)
		assert.EqualValues(t, 200, m.Do("GET", "/v1/api/me", created.Plaintext, nil).Status)
		assert.EqualValues(t, 429, m.Do("GET", "/v1/api/me", created.Plaintext, nil).Status)

		patch := map[string]any{"rateLimit": map[string]any{"requests": 1000, "per": "minute"}, "allowedIps": []string{"127.0.0.5"}, "agentDailyTokens": 5000}
		assert.EqualValues(t, 403, m.call("PATCH", path, member, patch).Status, "only admins change limits")
		other := m.iss.Session("user_initech", "org_initech", "admin", time.Hour)
		assert.EqualValues(t, 404, m.call("PATCH", "/v1/tenants/initech/api-keys/"+created.APIKey.ID, other, patch).Status, "another tenant's key")
		r = m.call("PATCH", path, admin, map[string]any{"scopes": []string{"references:read"}})
		assert.EqualValues(t, 422, r.Status, "scopes are immutable")
		r = m.call("PATCH", path, admin, map[string]any{"allowedIps": []string{"10.0.0.0/33"}})
		assert.EqualValues(t, 422, r.Status)
		assert.Contains(t, string(r.Body), "allowedIps[0]")

		r = m.call("PATCH", path, admin, patch)
		require.EqualValues(t, 200, r.Status, string(r.Body))
		var v api.KeyView
		r.Decode(t, &v)
		assert.Equal(t, rate(1000, "minute"), v.RateLimit)
		assert.Equal(t, []string{"127.0.0.5/32"}, v.AllowedIPs)
		assert.Equal(t, int64(5000), *v.AgentDailyTokens)
		require.NotNil(t, v.Agent)
		assert.Equal(t, int64(5000), v.Agent.DailyTokens)
		assert.Equal(t, []string{"references:read"}, v.Scopes, "scopes kept")

		// The change applies to the next request: a fresh, bigger bucket and the new list.
		assert.EqualValues(t, 403, m.Do("GET", "/v1/api/me", created.Plaintext, nil).Status)
		assert.EqualValues(t, 200, m.DoWith(apitest.From("127.0.0.5"), "GET", "/v1/api/me", created.Plaintext, nil).Status)
		r = m.call("PATCH", path, admin, map[string]any{"allowedIps": []string{}})
		require.EqualValues(t, 200, r.Status)
		assert.EqualValues(t, 200, m.Do("GET", "/v1/api/me", created.Plaintext, nil).Status, "an empty list clears it")

		events, _, err := st.ListAudit(context.Background(), store.Tenancy{TenantID: "acme", Environment: auth.Test},
			store.AuditFilter{Action: "api_key.update_limits"}, store.Page{})
		require.NoError(t, err)
		require.Len(t, events, 2)
		assert.Equal(t, created.APIKey.ID, events[1].TargetID)
		assert.True(t, strings.HasPrefix(events[1].ActorID, "acme_"), events[1].ActorID)
	})
}
