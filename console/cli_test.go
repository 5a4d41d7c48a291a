package console_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
)

// TestCLILoginApprovedAndDeniedInABrowser is `veref login` from the
// recruiter's side: the CLI's URL opens the console, the recruiter signs
// in, sees the request and approves (then, for a second login, denies);
// the CLI's poll gets the key once, or access_denied.
func TestCLILoginApprovedAndDeniedInABrowser(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	start := func(host string) api.CLIAuthorization {
		r := s.Do("POST", "/v1/cli/sessions", "", map[string]any{"clientName": "veref test", "hostname": host})
		require.Equal(t, 201, r.Status, string(r.Body))
		var a api.CLIAuthorization
		r.Decode(t, &a)
		return a
	}
	poll := func(a api.CLIAuthorization) (int, string, api.CLILogin) {
		r := s.Do("POST", "/v1/cli/sessions/token", "", map[string]any{"deviceCode": a.DeviceCode})
		var login api.CLILogin
		if r.Status == 200 {
			r.Decode(t, &login)
		}
		return r.Status, r.Code(), login
	}

	a := start("dana-laptop")
	// The server built the URL for the console of this same server.
	link := s.url + "/app/cli?code=" + a.UserCode
	run(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#signin-recruiter_demo")))
	run(t, ctx, chromedp.Click(chromedp.CSS("#signin-recruiter_demo")), chromedp.WaitVisible(chromedp.CSS("#cli-form")))
	assert.Equal(t, a.UserCode, text(t, ctx, "#cli-code"), "sign-in came back to the request")
	assert.Equal(t, "dana-laptop", text(t, ctx, "#cli-host"))
	assert.Equal(t, "pending", text(t, ctx, "#cli-status"))
	shot(t, ctx, "10-cli-login-request")
	_, code, _ := poll(a)
	assert.Equal(t, "authorization_pending", code)

	run(t, ctx, chromedp.Click(chromedp.CSS(`input[name="scope"][value="references:read"]`)),
		chromedp.Click(chromedp.CSS("#cli-approve")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	assert.Contains(t, text(t, ctx, "#notice"), "Approved")
	assert.Equal(t, "approved", text(t, ctx, "#cli-status"))
	shot(t, ctx, "11-cli-login-approved")
	status, _, login := poll(a)
	require.Equal(t, 200, status)
	assert.Equal(t, "CLI on dana-laptop", login.APIKey.Name)
	assert.Equal(t, []string{"references:read"}, login.APIKey.Scopes)
	assert.Equal(t, "test", login.APIKey.Environment)
	code2, _ := s.call(t, login.Plaintext)
	assert.Equal(t, 200, code2)
	_, code, _ = poll(a)
	assert.Equal(t, "expired_token", code, "the key is given once")

	// A second login, denied; and a code typed by hand.
	b := start("unknown-box")
	run(t, ctx, chromedp.Navigate(s.url+"/app/cli"), chromedp.WaitVisible(chromedp.CSS("#cli-code-form")),
		chromedp.SendKeys(chromedp.CSS("#code"), b.UserCode), chromedp.Submit(chromedp.CSS("#code")),
		chromedp.WaitVisible(chromedp.CSS("#cli-form")))
	assert.Equal(t, "unknown-box", text(t, ctx, "#cli-host"))
	run(t, ctx, chromedp.Click(chromedp.CSS("#cli-deny")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	assert.Contains(t, text(t, ctx, "#notice"), "Denied")
	_, code, _ = poll(b)
	assert.Equal(t, "access_denied", code)

	run(t, ctx, chromedp.Navigate(s.url+"/app/cli?code=BBBB-BBBB"), chromedp.WaitVisible(chromedp.CSS("#error")))
	assert.Contains(t, text(t, ctx, "#error"), "no login request")
}
