package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/store"
)

// agent is a cookie-keeping HTTP client, the way a browser without script
// talks to the console.
type agent struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newAgent(t *testing.T, base string) *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{t: t, base: base, c: &http.Client{Jar: jar}}
}

func (a *agent) get(path string) (int, string, http.Header) {
	res, err := a.c.Get(a.base + path)
	require.NoError(a.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (a *agent) post(path string, form url.Values, headers ...string) (int, string) {
	req, _ := http.NewRequest("POST", a.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := a.c.Do(req)
	require.NoError(a.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (a *agent) signIn(recruiter string) string {
	_, body, _ := a.get("/app/sign-in")
	m := csrfField.FindStringSubmatch(body)
	require.NotNil(a.t, m, body)
	code, body := a.post("/app/sign-in/dev", url.Values{"csrf": {m[1]}, "recruiter": {recruiter}, "next": {"/app/keys"}})
	require.Equal(a.t, 200, code, body)
	return m[1]
}

func TestConsoleRulesWithoutABrowser(t *testing.T) {
	s := newSite(t)
	adminKey, err := s.Keys.Create(context.Background(), api.NewKey{TenantID: "demo", RecruiterID: "recruiter_demo", Name: "admin only",
		Environment: auth.Test}, api.Actor{Kind: store.ActorOperator, ID: "t"})
	require.NoError(t, err)

	// Signed out: every page sends you to sign in; headers are strict.
	anon := newAgent(t, s.url)
	code, body, h := anon.get("/app/keys")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "<title>Sign in — Veref</title>")
	csp := h.Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self';")
	assert.NotContains(t, csp, "unsafe-inline")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.NotRegexp(t, `<script>|<script [^>]*>[^<]`, body, "no inline script")

	member := newAgent(t, s.url)
	csrf := member.signIn("recruiter_member")
	code, body, _ = member.get("/app/keys")
	require.Equal(t, 200, code)
	assert.Contains(t, body, "Your keys")
	assert.NotContains(t, body, "admin only", "a member does not see others' keys")
	code, _, _ = member.get("/app/keys/" + adminKey.APIKey.ID)
	assert.Equal(t, 404, code, "nor open them by URL")
	code, _ = member.post("/app/keys/"+adminKey.APIKey.ID+"/suspend", url.Values{"csrf": {csrf}})
	assert.Equal(t, 404, code, "nor act on them")

	// CSRF: a form without the token, with another's token, or from another site is refused.
	code, _ = member.post("/app/keys", url.Values{"name": {"sneaky"}, "environment": {"test"}, "allScopes": {"1"}})
	assert.Equal(t, 403, code)
	code, _ = member.post("/app/keys", url.Values{"csrf": {"x" + csrf[1:]}, "name": {"sneaky"}, "environment": {"test"}, "allScopes": {"1"}})
	assert.Equal(t, 403, code)
	code, _ = member.post("/app/keys", url.Values{"csrf": {csrf}, "name": {"sneaky"}, "environment": {"test"}, "allScopes": {"1"}},
		"Sec-Fetch-Site", "cross-site")
	assert.Equal(t, 403, code)
	keys, _, err := s.Store.ListAPIKeys(context.Background(), "demo", store.APIKeyFilter{RecruiterID: "recruiter_member"}, store.Page{})
	require.NoError(t, err)
	assert.Empty(t, keys, "nothing was created by a refused form")

	// Bad input is shown on the form, not half-written.
	code, body = member.post("/app/keys", url.Values{"csrf": {csrf}, "name": {"ok name"}, "environment": {"test"}})
	assert.Equal(t, 422, code)
	assert.Contains(t, body, "Choose at least one scope")
	code, body = member.post("/app/keys", url.Values{"csrf": {csrf}, "name": {"x"}, "environment": {"test"}, "allScopes": {"1"}})
	assert.Equal(t, 422, code)
	assert.Contains(t, body, "3 to 50")
	code, body = member.post("/app/keys", url.Values{"csrf": {csrf}, "name": {"member key"}, "environment": {"test"}, "scope": {"reports:read"}})
	require.Equal(t, 201, code, body)
	assert.Regexp(t, `<code id="plaintext">vrf_test_`, body)
	code, body = member.post("/app/keys/"+adminKey.APIKey.ID+"/revoke", url.Values{"csrf": {csrf}, "confirm": {"admin only"}})
	assert.Equal(t, 404, code)

	// Limits are set on the form, refused clearly when wrong, and shown on the key's page.
	limited := url.Values{"csrf": {csrf}, "name": {"limited key"}, "environment": {"test"}, "allScopes": {"1"},
		"rateRequests": {"5"}, "ratePer": {"second"}, "allowedIps": {"203.0.113.0/24, 2001:db8::/32"}}
	bad := url.Values{}
	for k, v := range limited {
		bad[k] = v
	}
	bad.Set("allowedIps", "203.0.113.0/24, 10.0.0.0/33")
	code, body = member.post("/app/keys", bad)
	assert.Equal(t, 422, code, body)
	assert.Contains(t, body, "is not a CIDR such as")
	assert.Contains(t, body, `value="203.0.113.0/24, 10.0.0.0/33"`, "the form keeps what was typed")
	bad.Set("allowedIps", "")
	bad.Set("rateRequests", "many")
	code, body = member.post("/app/keys", bad)
	assert.Equal(t, 422, code)
	assert.Contains(t, body, "whole number")
	bad.Set("rateRequests", "1000")
	code, body = member.post("/app/keys", bad)
	assert.Equal(t, 403, code, "a member may not exceed the default rate")
	assert.Contains(t, body, "Only a tenant admin")
	code, body = member.post("/app/keys", limited)
	require.Equal(t, 201, code, body)
	keys, _, err = s.Store.ListAPIKeys(context.Background(), "demo", store.APIKeyFilter{RecruiterID: "recruiter_member"}, store.Page{})
	require.NoError(t, err)
	var limitedID string
	for _, k := range keys {
		if k.Name == "limited key" {
			limitedID = k.ID
		}
	}
	require.NotEmpty(t, limitedID)
	created, _, err := s.Store.ListAuditEvents(context.Background(), "demo",
		store.AuditQuery{TargetID: limitedID, Action: "api_key.create"}, store.Page{})
	require.NoError(t, err)
	require.Len(t, created, 1)
	assert.Equal(t, store.SurfaceConsole, created[0].Surface, "the trail says the key was made in the console")
	require.NoError(t, s.Store.AddAgentTokens(context.Background(), limitedID, time.Now().UTC().Format(time.DateOnly), 1234))
	code, body, _ = member.get("/app/keys/" + limitedID)
	require.Equal(t, 200, code)
	assert.Contains(t, body, `<dd id="ratelimit">5 requests per second</dd>`)
	assert.Contains(t, body, `<code>203.0.113.0/24</code>, <code>2001:db8::/32</code>`)
	budget := quota.DefaultAgentDailyTokens
	assert.Contains(t, body, fmt.Sprintf("1234 used today of %d, %d remaining", budget, budget-1234))
	_, body, _ = member.get("/app/keys")
	m := regexp.MustCompile(`href="/app/keys/(key_[^"]+)">member key<`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	_, body, _ = member.get("/app/keys/" + m[1])
	assert.Contains(t, body, `<dd id="allowedips">any address</dd>`)

	// The admin must type the name to revoke.
	admin := newAgent(t, s.url)
	csrf = admin.signIn("recruiter_demo")
	code, body = admin.post("/app/keys/"+adminKey.APIKey.ID+"/revoke", url.Values{"csrf": {csrf}, "confirm": {"admin"}})
	assert.Equal(t, 422, code)
	assert.Contains(t, body, "Type the key")
	k, err := s.Store.GetAPIKey(context.Background(), "demo", adminKey.APIKey.ID)
	require.NoError(t, err)
	assert.Nil(t, k.RevokedAt)
	code, _ = admin.post("/app/keys/"+adminKey.APIKey.ID+"/roll", url.Values{"csrf": {csrf}, "graceHours": {"500"}})
	assert.Equal(t, 422, code, "grace beyond 168 hours")
	_, body, _ = admin.get("/app/keys")
	assert.Contains(t, body, "member key", "an admin sees every key")

	code, body, _ = admin.get("/app/audit?since=yesterday")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "must be a date")

	// After sign-in the console only sends you to its own pages.
	noFollow := *admin.c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, next := range []string{"https://evil.example/", "//evil.example/app/", "/app/audit"} {
		req, _ := http.NewRequest("POST", s.url+"/app/sign-in/dev", strings.NewReader(url.Values{"csrf": {csrf}, "recruiter": {"recruiter_demo"}, "next": {next}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := noFollow.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		want := "/app/keys"
		if next == "/app/audit" {
			want = next
		}
		assert.Equal(t, want, res.Header.Get("Location"), next)
	}
}
