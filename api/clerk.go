package api

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// JWS parsing, signature and claim checks are golang-jwt's; fetching and
// parsing the JWKS and choosing the key by kid are jwkset's and keyfunc's.
// What stays here is Clerk's claim shapes and the refetch policy: jwkset's
// own unknown-kid refresh waits on a wall-clock rate limiter, blocking the
// request, where this one answers at once and runs on the verifier's clock.

const (
	// An unknown kid is attacker-controlled input; without a floor on the
	// refetch interval every forged token would cost one request to Clerk.
	jwksMinRefetch = 10 * time.Second
	// After a failed fetch retry sooner than after a success, so a short
	// outage of the JWKS endpoint does not turn into ten seconds of 503s,
	// while still bounding outbound traffic to one request a second.
	jwksRetryAfterFailure = time.Second
	// Keys Clerk has withdrawn must stop verifying eventually even if no
	// unknown kid ever shows up to trigger a refetch.
	jwksMaxAge = time.Hour

	jwksMaxBody    = 1 << 20
	clerkMaxToken  = 16 << 10
	clerkMinRSABit = 2048
)

// ClerkSession is the identity a verified Clerk session token vouches for.
type ClerkSession struct {
	UserID string
	OrgID  string
	// OrgRole is always in Clerk's v1 form ("org:admin", "org:member"), also
	// for v2 tokens whose compact claim drops the prefix, so callers compare
	// roles without caring which token version the instance issues.
	OrgRole string
	Admin   bool
}

// ClerkError explains why a session token was refused. Reasons never quote
// the token, so they are safe to log and to return to the client.
type ClerkError struct {
	Reason string
	// Unavailable means the token could not be judged because the JWKS
	// could not be fetched: the caller should answer 503, not 401.
	Unavailable bool
	err         error
}

func (e *ClerkError) Error() string { return "clerk session: " + e.Reason }
func (e *ClerkError) Unwrap() error { return e.err }

func clerkErr(reason string) *ClerkError { return &ClerkError{Reason: reason} }

// ClerkVerifier verifies Clerk session JWTs (RS256) against the instance's
// JWKS. It is safe for concurrent use.
type ClerkVerifier struct {
	// Now, Leeway and AuthorizedParties may be changed after construction,
	// before first use.
	Now    func() time.Time
	Leeway time.Duration
	// AuthorizedParties lists the origins (https://app.example.com) whose
	// pages may hold a session; a token whose azp names another origin is
	// refused. Empty means azp is not checked. As in Clerk's own SDKs, a
	// token without azp (minted by a backend, not a browser) passes.
	AuthorizedParties []string

	jwksURL string
	issuer  string
	client  *http.Client

	// fetchSem serialises JWKS fetches so a burst of tokens with a new kid
	// costs one request; it is a channel rather than a mutex so waiters can
	// give up when their own request is cancelled.
	fetchSem chan struct{}

	mu          sync.Mutex
	keys        keyfunc.Keyfunc // nil until the first successful fetch
	fetchedAt   time.Time       // last successful fetch
	attemptedAt time.Time       // last fetch attempt, successful or not
	lastErr     error           // error of the last attempt, nil if it succeeded
}

// NewClerkVerifier returns a verifier for tokens whose iss is exactly issuer,
// signed by keys published at jwksURL. A nil httpClient gets a client with a
// 5 second timeout, because the default client never times out.
func NewClerkVerifier(jwksURL, issuer string, httpClient *http.Client) *ClerkVerifier {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 5 * time.Second}
	}
	// jwkset decodes the body as it streams; bound it so a misbehaving
	// endpoint cannot make us buffer without end.
	limited := *httpClient
	base := limited.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	limited.Transport = limitBody{base}
	return &ClerkVerifier{
		Now:      time.Now,
		Leeway:   30 * time.Second,
		jwksURL:  jwksURL,
		issuer:   issuer,
		client:   &limited,
		fetchSem: make(chan struct{}, 1),
	}
}

func (v *ClerkVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// clerkClaims are Clerk's session claims, v1 (org_id, org_role) and v2
// (o.id, o.rol, sts).
type clerkClaims struct {
	jwt.RegisteredClaims
	Azp     string `json:"azp"`
	Sts     string `json:"sts"`
	OrgID   string `json:"org_id"`
	OrgRole string `json:"org_role"`
	O       *struct {
		ID  string `json:"id"`
		Rol string `json:"rol"`
	} `json:"o"`
}

// Verify checks a Clerk session token and returns the session it carries.
// Every failure is a *ClerkError.
func (v *ClerkVerifier) Verify(ctx context.Context, token string) (ClerkSession, error) {
	if v.issuer == "" {
		// An empty issuer would match tokens without iss; fail closed.
		return ClerkSession{}, clerkErr("verifier misconfigured: no issuer")
	}
	if token == "" {
		return ClerkSession{}, clerkErr("token missing")
	}
	if len(token) > clerkMaxToken {
		return ClerkSession{}, clerkErr("token too large")
	}
	if strings.Count(token, ".") != 2 {
		return ClerkSession{}, clerkErr("token malformed: not a compact JWS")
	}
	// Pinning RS256 before any key is looked at closes the classic
	// alg=none and RS256→HS256 key-confusion attacks.
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(v.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(max(v.Leeway, 0)),
		jwt.WithTimeFunc(v.now),
	)
	var c clerkClaims
	tok, err := p.ParseWithClaims(token, &c, v.keyfunc(ctx))
	if err != nil {
		return ClerkSession{}, refusal(err, tok, &c)
	}
	if c.Subject == "" {
		return ClerkSession{}, clerkErr("token has no subject")
	}
	// A pending session (v2 sts) has tasks left, such as choosing an
	// organization; Clerk does not count it as signed in.
	if c.Sts == "pending" {
		return ClerkSession{}, clerkErr("session is pending")
	}
	if c.Azp != "" && len(v.AuthorizedParties) > 0 && !v.authorizedParty(c.Azp) {
		return ClerkSession{}, clerkErr("token issued for another origin (azp)")
	}

	s := ClerkSession{UserID: c.Subject}
	if c.O != nil && c.O.ID != "" {
		s.OrgID = c.O.ID
		if c.O.Rol != "" {
			s.OrgRole = "org:" + strings.TrimPrefix(c.O.Rol, "org:")
		}
	} else if c.OrgID != "" {
		s.OrgID = c.OrgID
		s.OrgRole = c.OrgRole
	}
	s.Admin = s.OrgID != "" && s.OrgRole == "org:admin"
	return s, nil
}

func (v *ClerkVerifier) authorizedParty(azp string) bool {
	azp = strings.TrimRight(azp, "/")
	for _, p := range v.AuthorizedParties {
		if strings.EqualFold(strings.TrimRight(p, "/"), azp) {
			return true
		}
	}
	return false
}

// refusal turns a golang-jwt error into a reason that names the check that
// failed without quoting the token.
func refusal(err error, tok *jwt.Token, c *clerkClaims) *ClerkError {
	var ce *ClerkError
	if errors.As(err, &ce) {
		return ce
	}
	alg := ""
	if tok != nil {
		alg, _ = tok.Header["alg"].(string)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return clerkErr("token malformed")
	case alg != "RS256":
		reason := "unsupported signing algorithm"
		if knownAlgs[alg] {
			reason += " " + alg
		}
		return clerkErr(reason)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return clerkErr("signature invalid")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer) || c.Issuer == "":
		return clerkErr("issuer mismatch")
	case c.ExpiresAt == nil:
		return clerkErr("token has no expiry")
	case errors.Is(err, jwt.ErrTokenExpired):
		return clerkErr("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return clerkErr("token not yet valid")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return clerkErr("token issued in the future")
	}
	return clerkErr("token refused")
}

// keyfunc checks what golang-jwt leaves to the caller in the header, then
// finds the key for its kid, fetching the JWKS if needed.
func (v *ClerkVerifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		// RFC 7515 requires refusing tokens with critical extensions we do
		// not implement, and we implement none.
		if crit, ok := t.Header["crit"]; ok && crit != nil {
			return nil, clerkErr("unsupported critical header")
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			// Without a kid keyfunc would try every key; Clerk always names one.
			return nil, clerkErr("token has no key id")
		}
		keys, err := v.keySet(ctx, kid)
		if err != nil {
			return nil, err
		}
		key, err := keys.KeyfuncCtx(ctx)(t)
		if err != nil {
			return nil, clerkErr("unknown signing key")
		}
		pub, ok := key.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < clerkMinRSABit {
			return nil, clerkErr("signing key unusable")
		}
		return pub, nil
	}
}

// keySet returns the key set to look kid up in, fetching the JWKS when the
// kid is unknown or the set is old, within the refetch limits above.
func (v *ClerkVerifier) keySet(ctx context.Context, kid string) (keyfunc.Keyfunc, error) {
	if k, ok, fresh := v.cached(kid); ok && fresh {
		return k, nil
	}

	select {
	case v.fetchSem <- struct{}{}:
		defer func() { <-v.fetchSem }()
	case <-ctx.Done():
		return nil, unavailable(ctx.Err())
	}

	// Another caller may have fetched while we waited for the semaphore.
	k, ok, fresh := v.cached(kid)
	if ok && fresh {
		return k, nil
	}
	v.mu.Lock()
	now := v.now()
	wait := jwksMinRefetch
	if v.lastErr != nil {
		wait = jwksRetryAfterFailure
	}
	mayFetch := v.attemptedAt.IsZero() || now.Sub(v.attemptedAt) >= wait
	lastErr := v.lastErr
	v.mu.Unlock()

	if !mayFetch {
		switch {
		case ok:
			return k, nil // stale but still the best we know
		case lastErr != nil:
			// Clerk may have rotated to this kid while its JWKS is down;
			// we cannot tell, so this is a 503, not a verdict.
			return nil, unavailable(lastErr)
		default:
			return nil, clerkErr("unknown signing key")
		}
	}

	keys, err := v.fetch(ctx)
	if err != nil && ctx.Err() != nil {
		// The caller gave up; that says nothing about Clerk, so do not
		// start a cooldown that would refuse the next caller.
		return nil, unavailable(err)
	}
	v.mu.Lock()
	v.attemptedAt = now
	v.lastErr = err
	if err == nil {
		v.keys = keys
		v.fetchedAt = now
	}
	v.mu.Unlock()

	switch {
	case err == nil:
		return keys, nil
	case ok:
		return k, nil
	default:
		return nil, unavailable(err)
	}
}

func (v *ClerkVerifier) cached(kid string) (k keyfunc.Keyfunc, ok, fresh bool) {
	v.mu.Lock()
	k, fetchedAt := v.keys, v.fetchedAt
	v.mu.Unlock()
	if k == nil {
		return nil, false, false
	}
	_, err := k.Storage().KeyRead(context.Background(), kid)
	return k, err == nil, v.now().Sub(fetchedAt) < jwksMaxAge
}

func unavailable(err error) *ClerkError {
	return &ClerkError{Reason: "JWKS unavailable: " + err.Error(), Unavailable: true, err: err}
}

// fetch reads the JWKS once. Without a RefreshInterval jwkset starts no
// goroutine and fetches synchronously under ctx.
func (v *ClerkVerifier) fetch(ctx context.Context) (keyfunc.Keyfunc, error) {
	st, err := jwkset.NewStorageFromHTTP(v.jwksURL, jwkset.HTTPClientStorageOptions{
		Client:      v.client,
		Ctx:         ctx,
		HTTPTimeout: v.client.Timeout,
	})
	if err != nil {
		return nil, err
	}
	all, err := st.KeyReadAll(ctx)
	if err != nil {
		return nil, err
	}
	usable := 0
	for _, k := range all {
		if pub, ok := k.Key().(*rsa.PublicKey); ok && pub.N.BitLen() >= clerkMinRSABit {
			usable++
		}
	}
	if usable == 0 {
		return nil, errors.New("JWKS has no usable RS256 keys")
	}
	// Keys marked for encryption must never verify a signature; keys that
	// say nothing are Clerk's signing keys.
	return keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: st, UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
}

// limitBody caps JWKS responses at jwksMaxBody.
type limitBody struct{ base http.RoundTripper }

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{r: io.LimitReader(resp.Body, jwksMaxBody+1), c: resp.Body}
	return resp, nil
}

type cappedBody struct {
	r io.Reader
	c io.Closer
	n int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > jwksMaxBody {
		return n, fmt.Errorf("JWKS document larger than %d bytes", jwksMaxBody)
	}
	return n, err
}

func (b *cappedBody) Close() error { return b.c.Close() }

// knownAlgs limits which header values are echoed in errors, so a reason
// never carries arbitrary bytes from the token.
var knownAlgs = map[string]bool{
	"none": true, "HS256": true, "HS384": true, "HS512": true,
	"RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true,
}
