package api_test

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
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

// workspace is two server instances over one database, as in production
// behind a load balancer, with a clock tests move instead of sleeping.
type workspace struct {
	a, b   *apitest.Env
	iss    *clerktest.Issuer
	clock  *atomic.Int64
	admin  string
	member string
}

func newWorkspace(t *testing.T, st store.Store) workspace {
	iss := clerktest.New(t)
	clock := &atomic.Int64{}
	now := func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
	verifier := func() *api.ClerkVerifier { return api.NewClerkVerifier(iss.JWKSURL(), iss.Issuer(), nil) }
	a := apitest.New(t, st, apitest.Options{Clerk: verifier(), Now: now})
	b := apitest.New(t, st, apitest.Options{Clerk: verifier(), Now: now})
	a.Tenant("acme")
	a.Tenant("globex")
	require.NoError(t, st.CreateRecruiter(context.Background(), store.Recruiter{ID: "acme_member", TenantID: "acme",
		Email: "m@acme.test", ClerkUserID: "user_member", CreatedAt: time.Now()}))
	return workspace{a: a, b: b, iss: iss, clock: clock,
		admin:  iss.Session("user_acme", "org_acme", "admin", 24*time.Hour),
		member: iss.SessionV2("user_member", "org_acme", "member", 24*time.Hour)}
}

func (w workspace) call(e *apitest.Env, method, path, session string, body any) apitest.Response {
	return e.Do(method, path, "", body, "Authorization", "Bearer "+session)
}

func (w workspace) create(t *testing.T, session, name string) api.CreatedKey {
	r := w.call(w.a, "POST", "/v1/tenants/acme/api-keys", session, map[string]any{"name": name, "environment": "test"})
	require.EqualValues(t, 201, r.Status, string(r.Body))
	var c api.CreatedKey
	r.Decode(t, &c)
	return c
}

func TestWorkspaceSuspendResumeAcrossInstances(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		w := newWorkspace(t, st)
		k := w.create(t, w.member, "integration")
		base := "/v1/tenants/acme/api-keys/" + k.APIKey.ID
		require.EqualValues(t, 200, w.b.Do("GET", "/v1/api/me", k.Plaintext, nil).Status, "instance b knows the key")

		r := w.call(w.a, "POST", base+"/suspend", w.member, map[string]any{"note": "investigating"})
		require.EqualValues(t, 200, r.Status, string(r.Body))
		assert.Equal(t, "suspended", r.JSON()["status"])
		assert.Equal(t, "investigating", r.JSON()["suspendNote"])
		for _, e := range []*apitest.Env{w.a, w.b} {
			for _, call := range [][2]string{{"GET", "/v1/api/me"}, {"GET", "/v1/api/references"}, {"POST", "/v1/api/agent"}, {"POST", "/v1/api/mcp"}} {
				r := e.Do(call[0], call[1], k.Plaintext, map[string]any{})
				assert.EqualValues(t, 401, r.Status, "%s %s", call[0], call[1])
				assert.EqualValues(t, problem.AuthSuspendedKey, r.Code(), "%s %s: %s", call[0], call[1], r.Body)
			}
		}
		assert.EqualValues(t, 409, w.call(w.a, "POST", base+"/suspend", w.member, nil).Status, "already suspended")
		r = w.call(w.b, "GET", base, w.member, nil)
		assert.Equal(t, "suspended", r.JSON()["status"])

		r = w.call(w.b, "POST", base+"/resume", w.member, nil)
		require.EqualValues(t, 200, r.Status, string(r.Body))
		assert.Equal(t, "active", r.JSON()["status"])
		assert.EqualValues(t, 200, w.a.Do("GET", "/v1/api/me", k.Plaintext, nil).Status, "resumed on the other instance")
		assert.EqualValues(t, 409, w.call(w.a, "POST", base+"/resume", w.member, nil).Status, "not suspended")

		// Revocation stays permanent: no suspend or resume after it.
		require.EqualValues(t, 200, w.call(w.a, "DELETE", base, w.member, nil).Status)
		assert.EqualValues(t, 409, w.call(w.a, "POST", base+"/suspend", w.member, nil).Status)
		assert.EqualValues(t, problem.AuthRevokedKey, w.b.Do("GET", "/v1/api/me", k.Plaintext, nil).Code())

		acts := actions(t, w, w.member, "keyId="+k.APIKey.ID)
		assert.Equal(t, []string{"api_key.revoke", "api_key.resume", "api_key.suspend", "api_key.create"}, acts[:4])
	})
}

func TestWorkspaceRoll(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		w := newWorkspace(t, st)
		old := w.create(t, w.member, "payroll sync")
		r := w.call(w.a, "POST", "/v1/tenants/acme/api-keys/"+old.APIKey.ID+"/roll", w.member, map[string]any{"graceHours": 2})
		require.EqualValues(t, 201, r.Status, string(r.Body))
		var rolled api.CreatedKey
		r.Decode(t, &rolled)
		assert.Equal(t, "payroll sync", rolled.APIKey.Name)
		assert.Equal(t, old.APIKey.ID, rolled.APIKey.RolledFrom)
		assert.Equal(t, old.APIKey.Scopes, rolled.APIKey.Scopes)
		assert.Equal(t, "test", rolled.APIKey.Environment)
		assert.NotEqual(t, old.Plaintext, rolled.Plaintext)

		r = w.call(w.b, "GET", "/v1/tenants/acme/api-keys/"+old.APIKey.ID, w.member, nil)
		assert.Equal(t, "payroll sync (rolled)", r.JSON()["name"])
		assert.Equal(t, rolled.APIKey.ID, r.JSON()["rolledTo"])
		assert.EqualValues(t, 409, w.call(w.a, "POST", "/v1/tenants/acme/api-keys/"+old.APIKey.ID+"/roll", w.member, map[string]any{"graceHours": 1}).Status,
			"a rolled key is not rolled twice")

		// Within the grace both secrets work, on both instances.
		for _, e := range []*apitest.Env{w.a, w.b} {
			assert.EqualValues(t, 200, e.Do("GET", "/v1/api/me", old.Plaintext, nil).Status)
			assert.EqualValues(t, 200, e.Do("GET", "/v1/api/me", rolled.Plaintext, nil).Status)
		}
		w.clock.Store(int64(2*time.Hour - time.Minute))
		assert.EqualValues(t, 200, w.b.Do("GET", "/v1/api/me", old.Plaintext, nil).Status, "a minute before the grace ends")
		w.clock.Store(int64(2*time.Hour + time.Second))
		for _, e := range []*apitest.Env{w.a, w.b} {
			r := e.Do("GET", "/v1/api/me", old.Plaintext, nil)
			assert.EqualValues(t, 401, r.Status)
			assert.EqualValues(t, problem.AuthExpiredKey, r.Code())
			assert.Contains(t, r.JSON()["detail"], "rolled")
			assert.Contains(t, r.JSON()["hint"], rolled.APIKey.ID)
			assert.EqualValues(t, 200, e.Do("GET", "/v1/api/me", rolled.Plaintext, nil).Status)
		}

		// Grace 0 ends the old secret from the next request; a second roll of
		// the same name finds "(rolled)" taken and counts.
		r = w.call(w.b, "POST", "/v1/tenants/acme/api-keys/"+rolled.APIKey.ID+"/roll", w.member, map[string]any{"graceHours": 0})
		require.EqualValues(t, 201, r.Status, string(r.Body))
		var again api.CreatedKey
		r.Decode(t, &again)
		assert.EqualValues(t, problem.AuthExpiredKey, w.a.Do("GET", "/v1/api/me", rolled.Plaintext, nil).Code())
		assert.EqualValues(t, 200, w.a.Do("GET", "/v1/api/me", again.Plaintext, nil).Status)
		r = w.call(w.b, "GET", "/v1/tenants/acme/api-keys/"+rolled.APIKey.ID, w.member, nil)
		assert.Equal(t, "payroll sync (rolled) 2", r.JSON()["name"])

		for _, g := range []any{-1, 169, "two"} {
			r := w.call(w.a, "POST", "/v1/tenants/acme/api-keys/"+again.APIKey.ID+"/roll", w.member, map[string]any{"graceHours": g})
			assert.EqualValues(t, 422, r.Status, "graceHours %v", g)
		}
		ev := events(t, w, w.member, "action=api_key.roll&targetId="+old.APIKey.ID)
		require.Len(t, ev, 1)
		assert.Equal(t, "acme_member", ev[0].Actor.ID)
		assert.Equal(t, rolled.APIKey.ID, ev[0].Input["newKeyId"])
	})
}

func TestWorkspaceMembersAdminsAndTenants(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		w := newWorkspace(t, st)
		mine := w.create(t, w.member, "member key")
		theirs := w.create(t, w.admin, "admin key")
		for path, body := range map[string]any{"/suspend": map[string]any{"note": "x"}, "/resume": nil, "/roll": map[string]any{"graceHours": 1}, "/usage/summary": nil} {
			method := "POST"
			if path == "/usage/summary" {
				method = "GET"
			}
			r := w.call(w.a, method, "/v1/tenants/acme/api-keys/"+theirs.APIKey.ID+path, w.member, body)
			assert.EqualValues(t, 404, r.Status, "a member cannot %s another's key", path)
		}
		require.EqualValues(t, 200, w.call(w.a, "POST", "/v1/tenants/acme/api-keys/"+mine.APIKey.ID+"/suspend", w.admin, nil).Status,
			"an admin acts on every key of the tenant")

		// Another tenant's admin finds nothing of acme, and acme's keys are not in globex.
		globex := w.iss.Session("user_globex", "org_globex", "admin", time.Hour)
		for _, p := range []string{"/v1/tenants/acme/audit-events", "/v1/tenants/acme/api-keys/" + mine.APIKey.ID + "/usage/summary"} {
			assert.EqualValues(t, 404, w.call(w.a, "GET", p, globex, nil).Status, p)
		}
		r := w.call(w.a, "POST", "/v1/tenants/globex/api-keys/"+mine.APIKey.ID+"/resume", globex, nil)
		assert.EqualValues(t, 404, r.Status)
		assert.Empty(t, events(t, w, globex, "", "globex"), "globex's trail has none of acme's events")

		// The member's trail has their key's events, including the admin's
		// suspension of it, but nothing of the admin's own key.
		for _, e := range events(t, w, w.member, "") {
			assert.NotEqual(t, theirs.APIKey.ID, e.Target.ID)
		}
		assert.Contains(t, actions(t, w, w.member, ""), "api_key.suspend")
		assert.Contains(t, actions(t, w, w.admin, "targetId="+theirs.APIKey.ID), "api_key.create")
		assert.Empty(t, actions(t, w, w.member, "targetId="+theirs.APIKey.ID))
	})
}

func TestWorkspaceAuditFiltersAndPaging(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		w := newWorkspace(t, st)
		k := w.create(t, w.admin, "reader")
		// Calls through the key: each REST call that reads is not audited, but
		// one refused by scope is, so make both kinds of audited events.
		for i := 0; i < 3; i++ {
			w.a.Do("POST", "/v1/api/candidates", k.Plaintext, map[string]any{"name": fmt.Sprintf("Cand %d", i)})
		}
		all := events(t, w, w.admin, "keyId="+k.APIKey.ID)
		require.GreaterOrEqual(t, len(all), 4, "create plus three calls")
		apiEv := events(t, w, w.admin, "actorKind=api_key&actorId="+k.APIKey.ID)
		require.Len(t, apiEv, 3)
		assert.Equal(t, k.APIKey.Prefix, apiEv[0].Actor.KeyPrefix)
		assert.Equal(t, "reader", apiEv[0].Actor.KeyName)
		assert.EqualValues(t, "rest", apiEv[0].Surface)
		assert.NotEmpty(t, apiEv[0].TraceID)
		assert.Len(t, events(t, w, w.admin, "surface=rest&outcome=ok&environment=test&actorId="+k.APIKey.ID), 3)
		assert.Empty(t, events(t, w, w.admin, "environment=live&actorId="+k.APIKey.ID))
		assert.Len(t, events(t, w, w.admin, "targetType=api_key&action=api_key.create&targetId="+k.APIKey.ID), 1)
		assert.Empty(t, events(t, w, w.admin, "outcome=SCOPE_MISSING&actorId="+k.APIKey.ID))

		// since/until bound by time: nothing after the last event, all after the first.
		last, first := apiEv[0].At, all[len(all)-1].At
		assert.Empty(t, events(t, w, w.admin, "keyId="+k.APIKey.ID+"&since="+url.QueryEscape(last.Add(time.Millisecond).Format(time.RFC3339Nano))))
		assert.Len(t, events(t, w, w.admin, "keyId="+k.APIKey.ID+"&since="+url.QueryEscape(first.Format(time.RFC3339Nano))), len(all))
		assert.Empty(t, events(t, w, w.admin, "keyId="+k.APIKey.ID+"&until="+url.QueryEscape(first.Format(time.RFC3339Nano))))

		// Pages of two, newest first, cover everything exactly once.
		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			r := w.call(w.a, "GET", "/v1/tenants/acme/audit-events?limit=2&keyId="+k.APIKey.ID+"&cursor="+cursor, w.admin, nil)
			require.EqualValues(t, 200, r.Status, string(r.Body))
			var page struct {
				Data       []api.AuditEventView `json:"data"`
				NextCursor string               `json:"nextCursor"`
			}
			r.Decode(t, &page)
			assert.LessOrEqual(t, len(page.Data), 2)
			for _, e := range page.Data {
				seen = append(seen, e.ID)
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		var want []string
		for _, e := range all {
			want = append(want, e.ID)
		}
		assert.Equal(t, want, seen)

		for _, q := range []string{"limit=201", "limit=0", "since=yesterday", "environment=prod", "cursor=not*a*cursor", "actorKind=robot",
			"since=2030-01-01T00:00:00Z&until=2029-01-01T00:00:00Z"} {
			r := w.call(w.a, "GET", "/v1/tenants/acme/audit-events?"+q, w.admin, nil)
			assert.Contains(t, []int{400, 422}, r.Status, "%s: %s", q, r.Body)
		}
	})
}

func TestWorkspaceUsageSummary(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		w := newWorkspace(t, st)
		k := w.create(t, w.member, "summarised")
		for i := 0; i < 3; i++ {
			w.a.Do("GET", "/v1/api/references", k.Plaintext, nil)
		}
		w.a.Do("GET", "/v1/api/candidates/cand_missing", k.Plaintext, nil)
		w.a.FlushUsage()
		r := w.call(w.a, "GET", "/v1/tenants/acme/api-keys/"+k.APIKey.ID+"/usage/summary", w.member, nil)
		require.EqualValues(t, 200, r.Status, string(r.Body))
		var sum api.UsageSummary
		r.Decode(t, &sum)
		require.GreaterOrEqual(t, len(sum.Days), 30)
		today := sum.Days[len(sum.Days)-1]
		assert.Equal(t, time.Now().UTC().Format(time.DateOnly), today.Date)
		assert.Equal(t, 4, today.Calls)
		assert.Equal(t, 3, today.Status2xx)
		assert.Equal(t, 1, today.Status4xx)
		assert.Greater(t, today.P95MS, 0.0)
		assert.GreaterOrEqual(t, today.P95MS, today.P50MS)
		require.NotEmpty(t, today.TopRoutes)
		assert.Equal(t, api.NameCount{Name: "GET /v1/api/references", Calls: 3}, today.TopRoutes[0])
		assert.Equal(t, 0, sum.Days[0].Calls)

		q := "?from=2026-01-10T00:00:00Z&to=2026-01-01T00:00:00Z"
		assert.EqualValues(t, 422, w.call(w.a, "GET", "/v1/tenants/acme/api-keys/"+k.APIKey.ID+"/usage/summary"+q, w.member, nil).Status)
		q = "?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"
		assert.EqualValues(t, 422, w.call(w.a, "GET", "/v1/tenants/acme/api-keys/"+k.APIKey.ID+"/usage/summary"+q, w.member, nil).Status)
	})
}

func TestWorkspaceOpenAPIDocument(t *testing.T) {
	w := newWorkspace(t, openSQLite(t))
	r := w.a.Do("GET", "/v1/tenants/openapi.json", "", nil)
	require.EqualValues(t, 200, r.Status)
	doc := r.JSON()
	assert.Regexp(t, `^3\.1`, doc["openapi"])
	paths, _ := doc["paths"].(map[string]any)
	for _, p := range []string{"/v1/tenants/{tenant}/audit-events", "/v1/tenants/{tenant}/api-keys/{id}/suspend",
		"/v1/tenants/{tenant}/api-keys/{id}/resume", "/v1/tenants/{tenant}/api-keys/{id}/roll",
		"/v1/tenants/{tenant}/api-keys/{id}/usage/summary", "/v1/tenants/{tenant}/api-keys"} {
		assert.Contains(t, paths, p)
	}
	_, inSpec := w.a.Server.OpenAPI().Paths["/v1/tenants/{tenant}/audit-events"]
	assert.False(t, inSpec, "the workspace stays out of the integration spec")
}

func TestWorkspaceSessionCookie(t *testing.T) {
	w := newWorkspace(t, openSQLite(t))
	k := w.create(t, w.member, "cookie key")
	cookie := "__session=" + w.member
	r := w.a.Do("GET", "/v1/tenants/acme/api-keys", "", nil, "Cookie", cookie)
	require.EqualValues(t, 200, r.Status, string(r.Body))
	path := "/v1/tenants/acme/api-keys/" + k.APIKey.ID + "/suspend"
	r = w.a.Do("POST", path, "", nil, "Cookie", cookie, "Sec-Fetch-Site", "cross-site")
	assert.EqualValues(t, 401, r.Status, "a cookie from another site does not change anything")
	r = w.a.Do("POST", path, "", nil, "Cookie", cookie, "Sec-Fetch-Site", "same-origin")
	assert.EqualValues(t, 200, r.Status, string(r.Body))
}

func events(t *testing.T, w workspace, session, query string, tenant ...string) []api.AuditEventView {
	t.Helper()
	ten := "acme"
	if len(tenant) > 0 {
		ten = tenant[0]
	}
	r := w.call(w.a, "GET", "/v1/tenants/"+ten+"/audit-events?limit=200&"+query, session, nil)
	require.EqualValues(t, 200, r.Status, string(r.Body))
	var page struct {
		Data []api.AuditEventView `json:"data"`
	}
	r.Decode(t, &page)
	return page.Data
}

func actions(t *testing.T, w workspace, session, query string) []string {
	t.Helper()
	var out []string
	for _, e := range events(t, w, session, query) {
		out = append(out, e.Action)
	}
	return out
}

// Two replicas with their own pools, key caches and listeners: suspension,
// resumption and a roll's end made on one are refused or allowed by the
// other once it hears of them, without waiting out the cache's TTL.
func TestWorkspaceLifecycleSeenByAnotherPool(t *testing.T) {
	a, b, _, _ := twoInstances(t)
	ctx := context.Background()
	by := api.Actor{Kind: store.ActorRecruiter, ID: "acme_recruiter"}
	key := a.Key("acme", auth.Test)
	id := a.Principal(key).KeyID
	require.EqualValues(t, 200, b.Do("GET", "/v1/api/me", key, nil).Status)
	require.EqualValues(t, 200, b.Do("GET", "/v1/api/me", key, nil).Status, "warm in b's cache")

	_, err := a.Keys.Suspend(ctx, "acme", id, "incident", by)
	require.NoError(t, err)
	assert.EqualValues(t, problem.AuthSuspendedKey, a.Do("GET", "/v1/api/me", key, nil).Code(), "the changing instance at once")
	eventually(t, "b refuses the suspended key", func() bool { return b.Do("GET", "/v1/api/me", key, nil).Code() == string(problem.AuthSuspendedKey) })

	_, err = a.Keys.Resume(ctx, "acme", id, by)
	require.NoError(t, err)
	eventually(t, "b accepts the resumed key", func() bool { return b.Do("GET", "/v1/api/me", key, nil).Status == 200 })

	rolled, err := a.Keys.Roll(ctx, "acme", id, 0, by)
	require.NoError(t, err)
	eventually(t, "b refuses the rolled key", func() bool { return b.Do("GET", "/v1/api/me", key, nil).Code() == string(problem.AuthExpiredKey) })
	assert.EqualValues(t, 200, b.Do("GET", "/v1/api/me", rolled.Plaintext, nil).Status)
}
