package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/console"
	"github.com/verefwork/veref/devidp"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
)

// site is a server as serve --dev assembles it: the API, the dev identity
// provider and the console on one origin.
type site struct {
	*apitest.Env
	url string
}

func newSite(t *testing.T) site {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	now := time.Now().UTC()
	require.NoError(t, st.CreateTenant(ctx, store.Tenant{ID: "demo", Name: "Demo Recruiting", ClerkOrgID: "org_demo", CreatedAt: now}))
	require.NoError(t, st.CreateRecruiter(ctx, store.Recruiter{ID: "recruiter_demo", TenantID: "demo", Email: "demo@veref.test",
		ClerkUserID: "user_demo", Admin: true, CreatedAt: now}))
	require.NoError(t, st.CreateRecruiter(ctx, store.Recruiter{ID: "recruiter_member", TenantID: "demo", Email: "member@veref.test",
		ClerkUserID: "user_member_demo", CreatedAt: now}))
	idp, err := devidp.Load(ctx, st)
	require.NoError(t, err)
	e := apitest.New(t, st, apitest.Options{Clerk: api.NewClerkVerifier("http://dev.veref.invalid"+devidp.JWKSPath, devidp.Issuer, idp.Client())})
	con, err := console.New(console.Options{Store: st, Keys: e.Server.KeyService(), Sessions: e.Server.SessionCaller,
		Dev: idp, DevTenant: "demo", CLI: e.Server, AgentTokens: &quota.AgentTokens{Store: st}})
	require.NoError(t, err)
	root := http.NewServeMux()
	root.Handle("/", e.Server)
	root.Handle(console.Prefix+"/", con)
	srv := httptest.NewServer(root)
	t.Cleanup(srv.Close)
	return site{Env: e, url: srv.URL}
}

// call is curl: one request with an API key, answering status and code.
func (s site) call(t *testing.T, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/v1/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body struct {
		Code string `json:"code"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.Code
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is required under CI (apt-get install chromium); .ci/run installs it")
	}
	t.Skip("Chromium is not installed: skipping the browser tests (apt-get install chromium to run them)")
	return ""
}

func browser(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun, chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

func artifacts(t *testing.T) string {
	dir := os.Getenv("VEREF_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(artifacts(t), name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return strings.TrimSpace(s)
}

func title(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	return s
}

func TestConsoleInABrowser(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)

	// Dev sign-in as the tenant admin.
	run(t, ctx, chromedp.Navigate(s.url+"/app/"), chromedp.WaitVisible(chromedp.CSS("#signin-recruiter_demo")))
	assert.Equal(t, "Sign in — Veref", title(t, ctx))
	run(t, ctx, chromedp.Click(chromedp.CSS("#signin-recruiter_demo")), chromedp.WaitVisible(chromedp.CSS("#create")))
	assert.Equal(t, "API keys — Veref", title(t, ctx))
	assert.Contains(t, text(t, ctx, "#who"), "demo@veref.test")

	// Create a key with two scopes, keyboard-style: type, tick, submit.
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "browser key"),
		chromedp.Click(chromedp.CSS(`input[value="references:read"]`)),
		chromedp.Click(chromedp.CSS(`input[value="candidates:write"]`)),
		chromedp.Click(chromedp.CSS("#create-submit")),
		chromedp.WaitVisible(chromedp.CSS("#plaintext")))
	plaintext := text(t, ctx, "#plaintext")
	require.True(t, strings.HasPrefix(plaintext, "vrf_test_"), plaintext)
	run(t, ctx, chromedp.WaitReady(chromedp.CSS("html[data-ready]")), chromedp.Click(chromedp.CSS("#copy")), chromedp.WaitVisible(chromedp.CSS("#copy-status:not(:empty)")))
	assert.NotEmpty(t, text(t, ctx, "#copy-status"), "app.js ran under the CSP and answered the copy")
	shot(t, ctx, "01-key-created")
	run(t, ctx, chromedp.Click(chromedp.CSS("#copied-ack")), chromedp.WaitVisible(chromedp.CSS("#keys")))
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	require.NoError(t, err)
	assert.NotContains(t, html, plaintext, "the plaintext is shown once")

	// The key works from curl, and shows as used.
	code, _ := s.call(t, plaintext)
	require.Equal(t, 200, code)
	require.Equal(t, 201, s.Do("POST", "/v1/api/candidates", plaintext, map[string]any{"name": "Ada Lovelace"}).Status)
	s.FlushUsage()
	run(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#keys")))
	row := `tr:has(a[href^="/app/keys/key_"]):first-of-type`
	assert.Contains(t, text(t, ctx, "#keys tbody"), "browser key")
	assert.NotEqual(t, "never", text(t, ctx, row+" .lastused"))
	assert.Contains(t, text(t, ctx, row), "references:read, candidates:write")
	assert.Contains(t, text(t, ctx, row), "active")
	shot(t, ctx, "02-keys-page")

	// Suspend: 401 AUTH_SUSPENDED_KEY; resume: 200.
	run(t, ctx, chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(chromedp.CSS("#suspend")))
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#suspend-note"), "checking a leak"), chromedp.Click(chromedp.CSS("#suspend")),
		chromedp.WaitVisible(chromedp.CSS("#resume")))
	assert.Equal(t, "suspended", text(t, ctx, "#status"))
	code, errCode := s.call(t, plaintext)
	assert.Equal(t, 401, code)
	assert.Equal(t, "AUTH_SUSPENDED_KEY", errCode)
	run(t, ctx, chromedp.Click(chromedp.CSS("#resume")), chromedp.WaitVisible(chromedp.CSS("#suspend")))
	assert.Equal(t, "active", text(t, ctx, "#status"))
	code, _ = s.call(t, plaintext)
	assert.Equal(t, 200, code)
	s.FlushUsage()

	// Roll with no grace: the new secret is shown once, the old one stops.
	run(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#roll")),
		chromedp.SetValue(chromedp.CSS("#grace"), "0"), chromedp.Click(chromedp.CSS("#roll")),
		chromedp.WaitVisible(chromedp.CSS("#plaintext")))
	rolled := text(t, ctx, "#plaintext")
	require.NotEqual(t, plaintext, rolled)
	code, errCode = s.call(t, plaintext)
	assert.Equal(t, "AUTH_EXPIRED_KEY", errCode, "grace 0 ends the old secret at once")
	code, _ = s.call(t, rolled)
	assert.Equal(t, 200, code)
	s.FlushUsage()
	run(t, ctx, chromedp.Click(chromedp.CSS("#copied-ack")), chromedp.WaitVisible(chromedp.CSS("#chart")))
	shot(t, ctx, "03-key-detail-rolled")

	// Revoke, confirming with the name and a note.
	run(t, ctx, chromedp.Click(chromedp.CSS("#revoke")), chromedp.WaitVisible(chromedp.CSS("#revoke-form")))
	assert.Equal(t, "Revoke browser key — API keys — Veref", title(t, ctx))
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#note"), "done testing"), chromedp.SendKeys(chromedp.CSS("#confirm"), "browser key"),
		chromedp.Click(chromedp.CSS("#revoke-submit")), chromedp.WaitVisible(chromedp.CSS("#status.revoked")))
	code, errCode = s.call(t, rolled)
	assert.Equal(t, 401, code)
	assert.Equal(t, "AUTH_REVOKED_KEY", errCode)

	// The audit trail, filtered to suspensions.
	run(t, ctx, chromedp.Navigate(s.url+"/app/audit"), chromedp.WaitVisible(chromedp.CSS("#filters")),
		chromedp.SendKeys(chromedp.CSS("#f-action"), "api_key.suspend"), chromedp.Click(chromedp.CSS("#filter")))
	// The unfiltered table stays visible until the filtered page replaces
	// it; only the new page renders the filter as the field's attribute.
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#f-action[value="api_key.suspend"]`)), chromedp.WaitVisible(chromedp.CSS("#events")))
	actions, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#events tbody tr")).map(r => r.dataset.action)`))
	require.NoError(t, err)
	assert.Equal(t, []string{"api_key.suspend"}, actions)
	assert.Contains(t, text(t, ctx, "#events"), "console")
	shot(t, ctx, "04-audit-filtered")
	run(t, ctx, chromedp.Navigate(s.url+"/app/audit?surface=rest"), chromedp.WaitVisible(chromedp.CSS("#events")))
	assert.Contains(t, text(t, ctx, "#events"), "browser key", "the key's own calls name it as the actor")

	// A member sees only their own keys and none of the tenant's.
	run(t, ctx, chromedp.Click(chromedp.CSS(`form[action="/app/sign-out"] button`)), chromedp.WaitVisible(chromedp.CSS("#signin-recruiter_member")),
		chromedp.Click(chromedp.CSS("#signin-recruiter_member")), chromedp.WaitVisible(chromedp.CSS("#create")))
	assert.Equal(t, "Your keys", text(t, ctx, "#list-h"))
	assert.Equal(t, "No keys yet.", text(t, ctx, "#nokeys"))
	assert.Contains(t, text(t, ctx, ".who .badge"), "Member")
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#name"), "member key"), chromedp.Click(chromedp.CSS("#scope-all")),
		chromedp.Click(chromedp.CSS("#create-submit")), chromedp.WaitVisible(chromedp.CSS("#plaintext")),
		chromedp.Click(chromedp.CSS("#copied-ack")), chromedp.WaitVisible(chromedp.CSS("#keys")))
	assert.Contains(t, text(t, ctx, "#keys"), "member key")
	assert.NotContains(t, text(t, ctx, "#keys"), "browser key")
	shot(t, ctx, "05-member-keys")
	run(t, ctx, chromedp.Navigate(s.url+"/app/audit"), chromedp.WaitVisible(chromedp.CSS("#filters")))
	assert.NotContains(t, text(t, ctx, "main"), "api_key.suspend", "the admin's actions on their own key are not the member's")
}
