package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verefwork/veref/api/clerktest"
)

// clock is a settable time source shared by the fake issuer and the
// verifier, so tests move time instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T) (*clerktest.Issuer, *ClerkVerifier, *clock) {
	t.Helper()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	iss := clerktest.New(t)
	iss.Now = clk.Now
	v := NewClerkVerifier(iss.JWKSURL(), iss.Issuer(), nil)
	v.Now = clk.Now
	return iss, v, clk
}

// mustFail asserts a *ClerkError whose reason contains want, and that the
// error text leaks no part of the token.
func mustFail(t *testing.T, v *ClerkVerifier, token, want string) *ClerkError {
	t.Helper()
	s, err := v.Verify(context.Background(), token)
	if err == nil {
		t.Fatalf("token accepted (%+v), want refusal %q", s, want)
	}
	var ce *ClerkError
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *ClerkError", err, err)
	}
	if !strings.Contains(ce.Reason, want) {
		t.Fatalf("reason %q, want it to contain %q", ce.Reason, want)
	}
	if s != (ClerkSession{}) {
		t.Fatalf("refused token still returned a session: %+v", s)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Fatalf("error %q leaks a token segment", err)
		}
	}
	return ce
}

func mustVerify(t *testing.T, v *ClerkVerifier, token string) ClerkSession {
	t.Helper()
	s, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	return s
}

func TestClerkValidV1AndV2(t *testing.T) {
	iss, v, _ := setup(t)

	s := mustVerify(t, v, iss.Session("user_1", "org_1", "member", time.Minute))
	want := ClerkSession{UserID: "user_1", OrgID: "org_1", OrgRole: "org:member"}
	if s != want {
		t.Fatalf("v1 session = %+v, want %+v", s, want)
	}

	s = mustVerify(t, v, iss.SessionV2("user_2", "org_2", "member", time.Minute))
	want = ClerkSession{UserID: "user_2", OrgID: "org_2", OrgRole: "org:member"}
	if s != want {
		t.Fatalf("v2 session = %+v, want %+v", s, want)
	}
}

func TestClerkAdminMapping(t *testing.T) {
	iss, v, _ := setup(t)
	cases := []struct {
		name, token string
		want        ClerkSession
	}{
		{"v1 admin", iss.Session("u", "org_a", "org:admin", time.Minute),
			ClerkSession{UserID: "u", OrgID: "org_a", OrgRole: "org:admin", Admin: true}},
		{"v1 member", iss.Session("u", "org_a", "org:member", time.Minute),
			ClerkSession{UserID: "u", OrgID: "org_a", OrgRole: "org:member"}},
		{"v2 admin", iss.SessionV2("u", "org_b", "admin", time.Minute),
			ClerkSession{UserID: "u", OrgID: "org_b", OrgRole: "org:admin", Admin: true}},
		{"v2 member", iss.SessionV2("u", "org_b", "member", time.Minute),
			ClerkSession{UserID: "u", OrgID: "org_b", OrgRole: "org:member"}},
		{"v1 personal", iss.Session("u", "", "", time.Minute), ClerkSession{UserID: "u"}},
		{"v2 personal", iss.SessionV2("u", "", "", time.Minute), ClerkSession{UserID: "u"}},
		// A role name that merely contains "admin" must not grant admin.
		{"v1 custom role", iss.Session("u", "org_a", "org:admin_viewer", time.Minute),
			ClerkSession{UserID: "u", OrgID: "org_a", OrgRole: "org:admin_viewer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustVerify(t, v, tc.token); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	// An admin role without an organization id is not an organization admin.
	c := iss.Claims("u", time.Minute)
	c["org_role"] = "org:admin"
	if got := mustVerify(t, v, iss.Sign(c)); got.Admin {
		t.Fatalf("admin without org: %+v", got)
	}
}

func TestClerkTimeClaims(t *testing.T) {
	iss, v, clk := setup(t)
	now := clk.Now()

	expired := iss.Claims("u", time.Minute)
	expired["exp"] = now.Add(-31 * time.Second).Unix()
	mustFail(t, v, iss.Sign(expired), "token expired")

	withinLeeway := iss.Claims("u", time.Minute)
	withinLeeway["exp"] = now.Add(-20 * time.Second).Unix()
	mustVerify(t, v, iss.Sign(withinLeeway))

	v.Leeway = 0
	mustFail(t, v, iss.Sign(withinLeeway), "token expired")
	v.Leeway = 30 * time.Second

	notYet := iss.Claims("u", time.Hour)
	notYet["nbf"] = now.Add(2 * time.Minute).Unix()
	mustFail(t, v, iss.Sign(notYet), "not yet valid")

	nbfWithinLeeway := iss.Claims("u", time.Hour)
	nbfWithinLeeway["nbf"] = now.Add(20 * time.Second).Unix()
	mustVerify(t, v, iss.Sign(nbfWithinLeeway))

	future := iss.Claims("u", time.Hour)
	future["iat"] = now.Add(5 * time.Minute).Unix()
	delete(future, "nbf")
	mustFail(t, v, iss.Sign(future), "issued in the future")

	noExp := iss.Claims("u", time.Minute)
	delete(noExp, "exp")
	mustFail(t, v, iss.Sign(noExp), "no expiry")

	// golang-jwt reads a quoted number as a NumericDate; anything else
	// that is not a number is malformed.
	stringExp := iss.Claims("u", time.Minute)
	stringExp["exp"] = "tomorrow"
	mustFail(t, v, iss.Sign(stringExp), "malformed")

	// Fractional NumericDate is legal (RFC 7519) and must be honoured.
	frac := iss.Claims("u", time.Minute)
	frac["exp"] = float64(now.Unix()) + 60.5
	mustVerify(t, v, iss.Sign(frac))

	// The token stays valid until the clock passes exp.
	tok := iss.Session("u", "org", "member", time.Minute)
	mustVerify(t, v, tok)
	clk.Advance(time.Minute + 31*time.Second)
	mustFail(t, v, tok, "token expired")
}

func TestClerkIssuer(t *testing.T) {
	iss, v, _ := setup(t)

	c := iss.Claims("u", time.Minute)
	c["iss"] = "https://evil.example"
	mustFail(t, v, iss.Sign(c), "issuer mismatch")

	// Exact match only: no prefix or trailing-slash tolerance.
	c["iss"] = iss.Issuer() + "/"
	mustFail(t, v, iss.Sign(c), "issuer mismatch")

	delete(c, "iss")
	mustFail(t, v, iss.Sign(c), "issuer mismatch")

	// A verifier configured without an issuer must not accept iss-less tokens.
	open := NewClerkVerifier(iss.JWKSURL(), "", nil)
	mustFail(t, open, iss.Sign(c), "misconfigured")
}

func TestClerkMissingSubject(t *testing.T) {
	iss, v, _ := setup(t)
	c := iss.Claims("u", time.Minute)
	delete(c, "sub")
	mustFail(t, v, iss.Sign(c), "no subject")
	c["sub"] = ""
	mustFail(t, v, iss.Sign(c), "no subject")
}

func TestClerkWrongAlgorithm(t *testing.T) {
	iss, v, _ := setup(t)
	key := iss.CurrentKey()
	claims := iss.Claims("u", time.Minute)

	// Key confusion: an HMAC keyed with the public key, which anyone holds.
	der, err := x509.MarshalPKIXPublicKey(&key.Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, secret := range [][]byte{pubPEM, der, key.Private.N.Bytes()} {
		input := clerktest.Encode(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.KID}) +
			"." + clerktest.Encode(t, claims)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		hs := input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		mustFail(t, v, hs, "unsupported signing algorithm HS256")
	}

	none := clerktest.Encode(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.KID}) +
		"." + clerktest.Encode(t, claims) + "."
	mustFail(t, v, none, "unsupported signing algorithm none")
	for _, alg := range []string{"None", "NONE", "RS512", "PS256", ""} {
		tok := clerktest.SignWith(t, key.Private, map[string]any{"alg": alg, "kid": key.KID}, claims)
		mustFail(t, v, tok, "unsupported signing algorithm")
	}
	if hits := iss.JWKSHits(); hits != 0 {
		t.Fatalf("tokens with a refused alg caused %d JWKS fetches", hits)
	}
}

func TestClerkTamperedAndForeign(t *testing.T) {
	iss, v, _ := setup(t)
	tok := iss.Session("user_1", "org_1", "member", time.Minute)
	mustVerify(t, v, tok)

	parts := strings.Split(tok, ".")
	c := iss.Claims("user_1", time.Minute)
	c["org_id"], c["org_role"] = "org_1", "org:admin"
	tampered := parts[0] + "." + clerktest.Encode(t, c) + "." + parts[2]
	mustFail(t, v, tampered, "signature invalid")

	sig := []byte(parts[2])
	sig[10] ^= 1
	mustFail(t, v, parts[0]+"."+parts[1]+"."+string(sig), "")

	// A key Clerk never published, claiming the published kid.
	foreign := clerktest.NewKey(t)
	header := map[string]any{"alg": "RS256", "kid": iss.CurrentKey().KID}
	mustFail(t, v, clerktest.SignWith(t, foreign.Private, header, iss.Claims("u", time.Minute)), "signature invalid")

	// The same key under its own kid is simply unknown.
	header["kid"] = foreign.KID
	mustFail(t, v, clerktest.SignWith(t, foreign.Private, header, iss.Claims("u", time.Minute)), "unknown signing key")

	delete(header, "kid")
	mustFail(t, v, clerktest.SignWith(t, foreign.Private, header, iss.Claims("u", time.Minute)), "no key id")

	header["kid"] = iss.CurrentKey().KID
	header["crit"] = []string{"b64"}
	mustFail(t, v, clerktest.SignWith(t, iss.CurrentKey().Private, header, iss.Claims("u", time.Minute)), "critical")
}

func TestClerkMalformed(t *testing.T) {
	iss, v, _ := setup(t)
	good := iss.Session("u", "", "", time.Minute)
	parts := strings.Split(good, ".")
	cases := map[string]string{
		"":                                  "missing",
		"abc":                               "compact JWS",
		"a.b":                               "compact JWS",
		good + ".x":                         "compact JWS",
		"!!!." + parts[1] + "." + parts[2]:  "malformed",
		parts[0] + ".!!!." + parts[2]:       "malformed",
		"e30." + parts[1] + "." + parts[2]:  "unsupported signing algorithm",
		parts[0] + "." + parts[1] + ".":     "signature invalid",
		parts[0] + "." + parts[1] + ".***":  "malformed",
		strings.Repeat("a", 20000) + ".b.c": "too large",
	}
	for tok, want := range cases {
		ce := mustFail(t, v, tok, want)
		if ce.Unavailable {
			t.Fatalf("malformed token reported as JWKS outage: %v", ce)
		}
	}
}

func TestClerkRotationRefetchesOnce(t *testing.T) {
	iss, v, clk := setup(t)

	mustVerify(t, v, iss.Session("u", "", "", time.Minute))
	mustVerify(t, v, iss.Session("u", "", "", time.Minute))
	if got := iss.JWKSHits(); got != 1 {
		t.Fatalf("JWKS hits after two verifications = %d, want 1 (cached)", got)
	}

	iss.Rotate()
	rotated := iss.Session("u", "", "", time.Minute)
	clk.Advance(jwksMinRefetch)
	mustVerify(t, v, rotated)
	if got := iss.JWKSHits(); got != 2 {
		t.Fatalf("JWKS hits after rotation = %d, want 2", got)
	}
	mustVerify(t, v, rotated)
	if got := iss.JWKSHits(); got != 2 {
		t.Fatalf("JWKS hits after re-verifying rotated token = %d, want 2", got)
	}

	// Forged kids must not turn the verifier into a request amplifier.
	foreign := clerktest.NewKey(t)
	forged := clerktest.SignWith(t, foreign.Private, map[string]any{"alg": "RS256", "kid": foreign.KID}, iss.Claims("u", time.Minute))
	for range 20 {
		mustFail(t, v, forged, "unknown signing key")
	}
	if got := iss.JWKSHits(); got != 2 {
		t.Fatalf("JWKS hits after forged kids within 10s = %d, want 2", got)
	}

	// A rotation right after a fetch is picked up once the interval passes.
	iss.Rotate()
	again := iss.Session("u", "", "", time.Minute)
	mustFail(t, v, again, "unknown signing key")
	clk.Advance(jwksMinRefetch)
	mustVerify(t, v, again)
	if got := iss.JWKSHits(); got != 3 {
		t.Fatalf("JWKS hits after interval = %d, want 3", got)
	}
}

func TestClerkCacheExpires(t *testing.T) {
	iss, v, clk := setup(t)
	mustVerify(t, v, iss.Session("u", "", "", 3*time.Hour))
	clk.Advance(jwksMaxAge)
	mustVerify(t, v, iss.Session("u", "", "", time.Minute))
	if got := iss.JWKSHits(); got != 2 {
		t.Fatalf("JWKS hits after cache max age = %d, want 2", got)
	}

	// If Clerk is down when the cache ages out, known keys keep working.
	clk.Advance(jwksMaxAge)
	iss.SetDown(true)
	mustVerify(t, v, iss.Session("u", "", "", time.Minute))
}

func TestClerkJWKSUnavailable(t *testing.T) {
	iss, v, clk := setup(t)
	iss.SetDown(true)
	tok := iss.Session("u", "org", "admin", time.Minute)

	ce := mustFail(t, v, tok, "JWKS unavailable")
	if !ce.Unavailable {
		t.Fatalf("JWKS outage not flagged Unavailable: %v", ce)
	}
	// Within the retry delay the outage is reported without another request.
	ce = mustFail(t, v, tok, "JWKS unavailable")
	if !ce.Unavailable || iss.JWKSHits() != 1 {
		t.Fatalf("second call: unavailable=%v hits=%d, want true and 1", ce.Unavailable, iss.JWKSHits())
	}

	iss.SetDown(false)
	clk.Advance(jwksRetryAfterFailure)
	mustVerify(t, v, tok)

	// Unreachable (connection refused), not just an error status.
	dead := NewClerkVerifier("http://127.0.0.1:1/jwks", iss.Issuer(), nil)
	dead.Now = clk.Now
	if ce := mustFail(t, dead, tok, "JWKS unavailable"); !ce.Unavailable {
		t.Fatalf("unreachable JWKS not flagged Unavailable: %v", ce)
	}

	// A rejection that needs no key is a 401 even while Clerk is down.
	iss2, v2, _ := setup(t)
	iss2.SetDown(true)
	if ce := mustFail(t, v2, "a.b", "compact JWS"); ce.Unavailable {
		t.Fatal("malformed token flagged Unavailable")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClerkCancelledContextDoesNotPoisonCache(t *testing.T) {
	iss, _, clk := setup(t)
	tok := iss.Session("u", "", "", time.Minute)

	// The caller goes away while the JWKS request is in flight.
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			cancel()
			return nil, r.Context().Err()
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	v := NewClerkVerifier(iss.JWKSURL(), iss.Issuer(), client)
	v.Now = clk.Now

	_, err := v.Verify(ctx, tok)
	var ce *ClerkError
	if !errors.As(err, &ce) || !ce.Unavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled verify: %v", err)
	}
	// No cooldown was started, so the next caller fetches straight away.
	mustVerify(t, v, tok)
}

func TestClerkConcurrentSingleFetch(t *testing.T) {
	iss, v, _ := setup(t)
	tok := iss.SessionV2("u", "org", "admin", time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := iss.JWKSHits(); got != 1 {
		t.Fatalf("64 concurrent verifications fetched the JWKS %d times, want 1", got)
	}
}

func TestClerkAuthorizedParties(t *testing.T) {
	iss, v, _ := setup(t)
	c := iss.Claims("u", time.Minute)
	c["azp"] = "https://evil.example"
	foreign := iss.Sign(c)
	c["azp"] = "https://app.veref.test"
	ours := iss.Sign(c)
	noAzp := iss.Session("u", "", "", time.Minute)

	// Not configured: azp is not looked at.
	mustVerify(t, v, foreign)

	v.AuthorizedParties = []string{"https://app.veref.test/", "https://console.veref.test"}
	mustFail(t, v, foreign, "another origin")
	mustVerify(t, v, ours)
	// Tokens minted by a backend carry no azp; Clerk's SDKs accept them.
	mustVerify(t, v, noAzp)
}

func TestClerkPendingSessionRefused(t *testing.T) {
	iss, v, _ := setup(t)
	c := iss.Claims("u", time.Minute)
	c["v"], c["sts"] = 2, "pending"
	mustFail(t, v, iss.Sign(c), "pending")
	c["sts"] = "active"
	mustVerify(t, v, iss.Sign(c))
}

func TestClerkJWKSBodyBounded(t *testing.T) {
	iss, _, clk := setup(t)
	var hits atomic.Int32
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hits.Add(1)
		big := `{"keys":[],"pad":"` + strings.Repeat("x", jwksMaxBody) + `"}`
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(big)), Request: r}, nil
	})}
	v := NewClerkVerifier(iss.JWKSURL(), iss.Issuer(), client)
	v.Now = clk.Now
	ce := mustFail(t, v, iss.Session("u", "", "", time.Minute), "JWKS unavailable")
	if !ce.Unavailable || hits.Load() != 1 {
		t.Fatalf("oversized JWKS: unavailable=%v hits=%d", ce.Unavailable, hits.Load())
	}
}

func TestClerkEncryptionKeyNeverVerifies(t *testing.T) {
	iss, _, clk := setup(t)
	k := iss.CurrentKey()
	jwks := `{"keys":[{"kty":"RSA","use":"enc","kid":"` + k.KID + `","n":"` +
		base64.RawURLEncoding.EncodeToString(k.Private.N.Bytes()) + `","e":"AQAB"}]}`
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(jwks)), Request: r}, nil
	})}
	v := NewClerkVerifier(iss.JWKSURL(), iss.Issuer(), client)
	v.Now = clk.Now
	mustFail(t, v, iss.Session("u", "", "", time.Minute), "unknown signing key")
}
