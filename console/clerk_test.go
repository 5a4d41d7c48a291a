package console

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClerkFrontendFromPublishableKey(t *testing.T) {
	pk := "pk_test_" + base64.StdEncoding.EncodeToString([]byte("clever-cat-12.clerk.accounts.dev$"))
	host, err := clerkFrontendAPI(pk)
	require.NoError(t, err)
	assert.Equal(t, "clever-cat-12.clerk.accounts.dev", host)
	for _, bad := range []string{"", "sk_test_abc", "pk_live_!!!", "pk_test_" + base64.StdEncoding.EncodeToString([]byte("no-dollar")),
		"pk_test_" + base64.StdEncoding.EncodeToString([]byte("evil.example/x\"$"))} {
		_, err := clerkFrontendAPI(bad)
		assert.Error(t, err, bad)
	}

	// The sign-in page loads Clerk's script from that instance, and only
	// that origin is added to the CSP.
	c, err := New(Options{ClerkPublishableKey: pk})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "/app/sign-in", nil))
	body := rec.Body.String()
	assert.Contains(t, body, `src="https://clever-cat-12.clerk.accounts.dev/npm/@clerk/clerk-js@5/dist/clerk.browser.js"`)
	assert.Contains(t, body, `data-clerk-publishable-key="`+pk+`"`)
	csp := rec.Header().Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self' https://clever-cat-12.clerk.accounts.dev;")
	assert.False(t, strings.Contains(csp, "script-src 'self' 'unsafe-inline'"), "still no inline script")
}
