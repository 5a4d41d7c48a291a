package api

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

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
	// Now and Leeway may be changed after construction, before first use.
	Now    func() time.Time
	Leeway time.Duration

	jwksURL string
	issuer  string
	client  *http.Client

	// fetchSem serialises JWKS fetches so a burst of tokens with a new kid
	// costs one request; it is a channel rather than a mutex so waiters can
	// give up when their own request is cancelled.
	fetchSem chan struct{}

	mu          sync.Mutex
	keys        map[string]*rsa.PublicKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last fetch attempt, successful or not
	lastErr     error     // error of the last attempt, nil if it succeeded
}

// NewClerkVerifier returns a verifier for tokens whose iss is exactly issuer,
// signed by keys published at jwksURL. A nil httpClient gets a client with a
// 5 second timeout, because the default client never times out.
func NewClerkVerifier(jwksURL, issuer string, httpClient *http.Client) *ClerkVerifier {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 5 * time.Second}
	}
	return &ClerkVerifier{
		Now:      time.Now,
		Leeway:   30 * time.Second,
		jwksURL:  jwksURL,
		issuer:   issuer,
		client:   httpClient,
		fetchSem: make(chan struct{}, 1),
	}
}

func (v *ClerkVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

type jwsHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

type clerkClaims struct {
	Iss     string       `json:"iss"`
	Sub     string       `json:"sub"`
	Exp     *numericDate `json:"exp"`
	Nbf     *numericDate `json:"nbf"`
	Iat     *numericDate `json:"iat"`
	OrgID   string       `json:"org_id"`
	OrgRole string       `json:"org_role"`
	O       *struct {
		ID  string `json:"id"`
		Rol string `json:"rol"`
	} `json:"o"`
}

// numericDate accepts RFC 7519 NumericDate, which may be fractional, and
// refuses strings and absurd values instead of silently saturating.
type numericDate struct{ time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return errors.New("numeric date out of range")
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9))
	return nil
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
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ClerkSession{}, clerkErr("token malformed: not a compact JWS")
	}
	headerJSON, err := b64(parts[0])
	if err != nil {
		return ClerkSession{}, clerkErr("token malformed: header encoding")
	}
	var hdr jwsHeader
	if err := json.Unmarshal(headerJSON, &hdr); err != nil {
		return ClerkSession{}, clerkErr("token malformed: header")
	}
	// Pinning the algorithm before looking at keys closes the classic
	// alg=none and RS256→HS256 key-confusion attacks.
	if hdr.Alg != "RS256" {
		reason := "unsupported signing algorithm"
		if knownAlgs[hdr.Alg] {
			reason += " " + hdr.Alg
		}
		return ClerkSession{}, clerkErr(reason)
	}
	// RFC 7515 requires refusing tokens with critical extensions we do not
	// implement, and we implement none.
	if len(hdr.Crit) > 0 && !bytes.Equal(hdr.Crit, []byte("null")) {
		return ClerkSession{}, clerkErr("unsupported critical header")
	}
	if hdr.Kid == "" {
		return ClerkSession{}, clerkErr("token has no key id")
	}
	sig, err := b64(parts[2])
	if err != nil || len(sig) == 0 {
		return ClerkSession{}, clerkErr("token malformed: signature encoding")
	}

	key, err := v.key(ctx, hdr.Kid)
	if err != nil {
		return ClerkSession{}, err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig); err != nil {
		return ClerkSession{}, clerkErr("signature invalid")
	}

	// Claims are only parsed once the signature holds, so nothing below
	// handles attacker-chosen bytes.
	payload, err := b64(parts[1])
	if err != nil {
		return ClerkSession{}, clerkErr("token malformed: payload encoding")
	}
	var c clerkClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return ClerkSession{}, clerkErr("token malformed: claims")
	}
	if c.Iss != v.issuer {
		return ClerkSession{}, clerkErr("issuer mismatch")
	}
	now := v.now()
	leeway := max(v.Leeway, 0)
	if c.Exp == nil {
		return ClerkSession{}, clerkErr("token has no expiry")
	}
	if !now.Before(c.Exp.Add(leeway)) {
		return ClerkSession{}, clerkErr("token expired")
	}
	if c.Nbf != nil && now.Add(leeway).Before(c.Nbf.Time) {
		return ClerkSession{}, clerkErr("token not yet valid")
	}
	if c.Iat != nil && c.Iat.After(now.Add(leeway)) {
		return ClerkSession{}, clerkErr("token issued in the future")
	}
	if c.Sub == "" {
		return ClerkSession{}, clerkErr("token has no subject")
	}

	s := ClerkSession{UserID: c.Sub}
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

// key returns the verification key for kid, fetching the JWKS when the kid
// is unknown or the cache is old, within the refetch limits above.
func (v *ClerkVerifier) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if k, ok, fresh := v.cached(kid); ok && fresh {
		return k, nil
	}

	select {
	case v.fetchSem <- struct{}{}:
		defer func() { <-v.fetchSem }()
	case <-ctx.Done():
		return nil, &ClerkError{Reason: "JWKS unavailable: " + ctx.Err().Error(), Unavailable: true, err: ctx.Err()}
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

	if err != nil {
		if ok {
			return k, nil
		}
		return nil, unavailable(err)
	}
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, clerkErr("unknown signing key")
}

func (v *ClerkVerifier) cached(kid string) (k *rsa.PublicKey, ok, fresh bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok = v.keys[kid]
	return k, ok, v.now().Sub(v.fetchedAt) < jwksMaxAge
}

func unavailable(err error) *ClerkError {
	return &ClerkError{Reason: "JWKS unavailable: " + err.Error(), Unavailable: true, err: err}
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (v *ClerkVerifier) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > jwksMaxBody {
		return nil, errors.New("JWKS document too large")
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errors.New("JWKS document is not valid JSON")
	}
	keys := make(map[string]*rsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		// Skip rather than fail on keys we cannot use, so Clerk adding a
		// key of another type does not take verification down.
		if k.Kty != "RSA" || k.Kid == "" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		pub, err := rsaKey(k.N, k.E)
		if err != nil {
			continue
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable RS256 keys")
	}
	return keys, nil
}

func rsaKey(n64, e64 string) (*rsa.PublicKey, error) {
	nb, err := b64(n64)
	if err != nil {
		return nil, err
	}
	eb, err := b64(e64)
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(nb)
	e := new(big.Int).SetBytes(eb)
	if n.BitLen() < clerkMinRSABit {
		return nil, errors.New("RSA key too small")
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > math.MaxInt32 || e.Bit(0) == 0 {
		return nil, errors.New("RSA exponent invalid")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// b64 decodes unpadded base64url as JWS requires; padded input is tolerated
// because some JWKS publishers pad n and e.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// knownAlgs limits which header values are echoed in errors, so a reason
// never carries arbitrary bytes from the token.
var knownAlgs = map[string]bool{
	"none": true, "HS256": true, "HS384": true, "HS512": true,
	"RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true,
}
