// Package devidp is the identity provider of `serve --dev`: it stands in for
// Clerk by signing RS256 session tokens with a key kept in the development
// database and publishing that key as a JWKS, so the workspace routes and
// the console verify dev sessions exactly as they verify Clerk's. Nothing
// outside --dev and `admin session-token --dev` may use it.
package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/verefwork/veref/store"
)

const (
	// Issuer is the iss of dev tokens: a name under .invalid, which can
	// never be a real Clerk instance.
	Issuer = "https://dev.veref.invalid"
	// JWKSPath is where serve --dev publishes the signing key.
	JWKSPath = "/v1/dev/jwks.json"
	// MaxTTL bounds a dev session; a day covers a working session.
	MaxTTL = 24 * time.Hour
)

// Provider signs dev session tokens. It is safe for concurrent use.
type Provider struct {
	kid  string
	key  *rsa.PrivateKey
	jwks []byte
	Now  func() time.Time
}

// Load returns the provider of st's dev signing key, making the key on the
// first call for this database.
func Load(ctx context.Context, st store.Store) (*Provider, error) {
	kid, pemText, err := st.DevSigningKey(ctx)
	if errors.Is(err, store.ErrNotFound) {
		key, gerr := rsa.GenerateKey(rand.Reader, 2048)
		if gerr != nil {
			return nil, gerr
		}
		der, merr := x509.MarshalPKCS8PrivateKey(key)
		if merr != nil {
			return nil, merr
		}
		kid = store.NewID("devkey")
		pemText = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		err = st.InsertDevSigningKey(ctx, kid, pemText, time.Now().UTC())
		if errors.Is(err, store.ErrConflict) {
			// Another process made one first; use theirs.
			kid, pemText, err = st.DevSigningKey(ctx)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dev signing key: %w", err)
	}
	return parse(kid, pemText)
}

func parse(kid, pemText string) (*Provider, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("dev signing key: not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dev signing key: %w", err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("dev signing key: not RSA")
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	return &Provider{kid: kid, key: key, jwks: jwks, Now: time.Now}, nil
}

// Session is who a dev token speaks for, in Clerk's terms.
type Session struct {
	UserID string
	OrgID  string
	Admin  bool
}

// SessionFor looks up a recruiter of a tenant and the Clerk ids they are
// known by, so a dev token is accepted exactly where theirs would be.
func SessionFor(ctx context.Context, st store.Queries, tenantID, recruiterID string) (Session, error) {
	t, err := st.GetTenant(ctx, tenantID)
	if err != nil {
		return Session{}, fmt.Errorf("tenant %s: %w", tenantID, err)
	}
	r, err := st.GetRecruiter(ctx, tenantID, recruiterID)
	if err != nil {
		return Session{}, fmt.Errorf("recruiter %s of tenant %s: %w", recruiterID, tenantID, err)
	}
	if t.ClerkOrgID == "" || r.ClerkUserID == "" {
		return Session{}, fmt.Errorf("recruiter %s of tenant %s has no Clerk organization or user id to sign in as", recruiterID, tenantID)
	}
	return Session{UserID: r.ClerkUserID, OrgID: t.ClerkOrgID, Admin: r.Admin}, nil
}

// Sign issues a session token for s lasting ttl (at most MaxTTL), shaped
// like Clerk's v1 session claims.
func (p *Provider) Sign(s Session, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("a dev session lasts more than 0 and at most %s", MaxTTL)
	}
	now := p.Now()
	role := "org:member"
	if s.Admin {
		role = "org:admin"
	}
	claims := jwt.MapClaims{
		"iss": Issuer, "sub": s.UserID, "sid": store.NewID("devsess"),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
		"org_id": s.OrgID, "org_role": role,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = p.kid
	return tok.SignedString(p.key)
}

// JWKS is the public signing key as a JSON Web Key Set.
func (p *Provider) JWKS() []byte { return p.jwks }

// ServeHTTP publishes the JWKS (mount it at JWKSPath).
func (p *Provider) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(p.jwks)
}

// Client is an HTTP client whose every request is answered with the JWKS,
// in process: the server's session verifier reads the dev key through the
// same JWKS code path as Clerk's without calling itself over the network.
func (p *Provider) Client() *http.Client {
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
			Body: io.NopCloser(strings.NewReader(string(p.jwks))), ContentLength: int64(len(p.jwks))}, nil
	})}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
