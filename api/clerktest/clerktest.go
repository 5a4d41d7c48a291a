// Package clerktest stands in for a Clerk instance in tests: it serves a JWKS
// over httptest and signs session tokens with the keys it publishes, so code
// that verifies Clerk sessions is exercised end to end without the network.
package clerktest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultIssuer is the iss of every token an Issuer signs.
const DefaultIssuer = "https://clerk.test.veref"

// Issuer is a fake Clerk instance. Its methods are safe for concurrent use.
type Issuer struct {
	// Now sets iat/nbf/exp in Session and SessionV2; tests move it to
	// produce expired or not-yet-valid tokens without sleeping.
	Now func() time.Time

	t      testing.TB
	server *httptest.Server
	hits   atomic.Int64
	down   atomic.Bool

	mu   sync.Mutex
	keys []Key // published; the last one signs
}

// Key is one RSA signing key and the kid it is published under.
type Key struct {
	KID     string
	Private *rsa.PrivateKey
}

// New starts a fake Clerk with one fresh RSA-2048 key; it is shut down when
// the test ends.
func New(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{t: t, Now: time.Now}
	iss.keys = []Key{NewKey(t)}
	iss.server = httptest.NewServer(http.HandlerFunc(iss.serveJWKS))
	t.Cleanup(iss.server.Close)
	return iss
}

// NewKey generates an RSA-2048 key with a random kid. On its own it is a key
// no JWKS publishes, for testing that such signatures are refused.
func NewKey(t testing.TB) Key {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("clerktest: generate RSA key: %v", err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return Key{KID: "ins_test_" + hex.EncodeToString(id[:]), Private: priv}
}

func (iss *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	iss.hits.Add(1)
	if iss.down.Load() {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	iss.mu.Lock()
	set := make([]map[string]string, 0, len(iss.keys))
	for _, k := range iss.keys {
		set = append(set, map[string]string{
			"kty": "RSA",
			"use": "sig",
			"alg": "RS256",
			"kid": k.KID,
			"n":   base64.RawURLEncoding.EncodeToString(k.Private.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Private.E)).Bytes()),
		})
	}
	iss.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": set})
}

// JWKSURL is where the published keys are served.
func (iss *Issuer) JWKSURL() string { return iss.server.URL + "/.well-known/jwks.json" }

// Issuer is the iss claim to configure the verifier with.
func (iss *Issuer) Issuer() string { return DefaultIssuer }

// JWKSHits counts requests to the JWKS endpoint, failed ones included.
func (iss *Issuer) JWKSHits() int { return int(iss.hits.Load()) }

// SetDown makes the JWKS endpoint answer 503 (true) or recover (false).
func (iss *Issuer) SetDown(down bool) { iss.down.Store(down) }

// Rotate publishes a new key beside the old ones and signs with it from now
// on, as Clerk does during key rotation. It returns the new kid.
func (iss *Issuer) Rotate() string {
	k := NewKey(iss.t)
	iss.mu.Lock()
	iss.keys = append(iss.keys, k)
	iss.mu.Unlock()
	return k.KID
}

// CurrentKey is the key Sign uses.
func (iss *Issuer) CurrentKey() Key {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.keys[len(iss.keys)-1]
}

// Sign returns an RS256 token over claims, exactly as given, with the
// current key's kid in the header.
func (iss *Issuer) Sign(claims map[string]any) string {
	k := iss.CurrentKey()
	return SignWith(iss.t, k.Private, map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.KID}, claims)
}

// Claims returns the registered claims of a valid session for userID
// lasting ttl, without organization, ready to be changed before Sign.
func (iss *Issuer) Claims(userID string, ttl time.Duration) map[string]any {
	now := iss.Now()
	return map[string]any{
		"iss": iss.Issuer(),
		"sub": userID,
		"sid": "sess_test",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
}

// Session signs a v1-shaped session token: org_id and org_role. role may be
// given with or without the "org:" prefix ("admin", "org:member"); an empty
// orgID yields a personal session without organization claims.
func (iss *Issuer) Session(userID, orgID, role string, ttl time.Duration) string {
	c := iss.Claims(userID, ttl)
	if orgID != "" {
		c["org_id"] = orgID
		c["org_slug"] = "test-org"
		c["org_role"] = "org:" + strings.TrimPrefix(role, "org:")
	}
	return iss.Sign(c)
}

// SessionV2 signs a v2-shaped session token, with the compact organization
// claim o = {"id", "rol", "slg"} and v = 2; role as for Session.
func (iss *Issuer) SessionV2(userID, orgID, role string, ttl time.Duration) string {
	c := iss.Claims(userID, ttl)
	c["v"] = 2
	if orgID != "" {
		c["o"] = map[string]any{
			"id":  orgID,
			"rol": strings.TrimPrefix(role, "org:"),
			"slg": "test-org",
		}
	}
	return iss.Sign(c)
}

// SignWith builds an RS256-signed compact JWS from arbitrary header and
// claims, for tokens no honest issuer would produce (foreign keys, odd
// headers). The signature is RS256 whatever the header says.
func SignWith(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	signingInput := Encode(t, header) + "." + Encode(t, claims)
	digest := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatalf("clerktest: sign: %v", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Encode is the base64url JSON encoding of one JWS segment.
func Encode(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("clerktest: marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
