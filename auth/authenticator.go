package auth

import (
	"context"
	"errors"
	"strings"
	"time"
)

// KeyRecord is what the authenticator needs to know of a stored key.
type KeyRecord struct {
	ID          string
	TenantID    string
	RecruiterID string
	Name        string
	Prefix      string
	Environment Environment
	Hash        []byte
	Scopes      []Scope
	ExpiresAt   *time.Time
	RevokedAt   *time.Time
}

// ErrKeyNotFound is what a KeyLookup returns for an unknown prefix.
var ErrKeyNotFound = errors.New("auth: key not found")

// KeyLookup finds a key by its public prefix. The store implements it.
type KeyLookup interface {
	KeyByPrefix(ctx context.Context, prefix string) (KeyRecord, error)
}

// Authenticator turns a presented credential into a Principal. Every surface
// (REST, MCP, agent) goes through the same one.
type Authenticator struct {
	Keys   KeyLookup
	Hasher *Hasher
	Now    func() time.Time
}

// CredentialFromHeaders picks the token from "Authorization: Bearer" or
// "x-api-key". Both present and different is refused rather than guessed.
func CredentialFromHeaders(authorization, apiKey string) (string, error) {
	authorization = strings.TrimSpace(authorization)
	apiKey = strings.TrimSpace(apiKey)
	var bearer string
	if authorization != "" {
		scheme, rest, ok := strings.Cut(authorization, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			return "", &Error{Status: 401, Code: CodeInvalidFormat,
				Detail: "the Authorization header must be 'Bearer <API key>'",
				Hint:   "send Authorization: Bearer vrf_… or x-api-key: vrf_…"}
		}
		bearer = strings.TrimSpace(rest)
	}
	switch {
	case bearer == "" && apiKey == "":
		return "", &Error{Status: 401, Code: CodeMissing,
			Detail: "no API key was sent",
			Hint:   "send Authorization: Bearer vrf_… or x-api-key: vrf_…"}
	case bearer != "" && apiKey != "" && bearer != apiKey:
		return "", &Error{Status: 401, Code: CodeInvalidFormat,
			Detail: "the Authorization and x-api-key headers carry different credentials",
			Hint:   "send the key in one header only"}
	case bearer != "":
		return bearer, nil
	default:
		return apiKey, nil
	}
}

// Authenticate verifies token and returns its principal. Shape and checksum
// are checked before storage is touched.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Principal, error) {
	t, err := ParseToken(token)
	if err != nil {
		return Principal{}, err
	}
	rec, err := a.Keys.KeyByPrefix(ctx, t.Prefix)
	if errors.Is(err, ErrKeyNotFound) {
		return Principal{}, invalidKey()
	}
	if err != nil {
		return Principal{}, &Error{Status: 503, Code: CodeUnavailable,
			Detail: "the key store is unavailable; try again shortly"}
	}
	// The environment is part of the hashed token, so a prefix collision
	// across environments still fails the comparison below.
	if !a.Hasher.Matches(token, rec.Hash) || rec.Environment != t.Env {
		return Principal{}, invalidKey()
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if rec.RevokedAt != nil {
		return Principal{}, &Error{Status: 401, Code: CodeRevokedKey,
			Detail: "this API key was revoked on " + rec.RevokedAt.UTC().Format(time.RFC3339),
			Hint:   "ask a tenant admin for a new key"}
	}
	if rec.ExpiresAt != nil && !now().Before(*rec.ExpiresAt) {
		return Principal{}, &Error{Status: 401, Code: CodeExpiredKey,
			Detail: "this API key expired on " + rec.ExpiresAt.UTC().Format(time.RFC3339),
			Hint:   "create a new key"}
	}
	scopes := rec.Scopes
	if len(scopes) == 0 {
		scopes = AllScopes()
	}
	return Principal{
		TenantID: rec.TenantID, Environment: rec.Environment, RecruiterID: rec.RecruiterID,
		KeyID: rec.ID, KeyPrefix: rec.Prefix, KeyName: rec.Name, Scopes: scopes, ExpiresAt: rec.ExpiresAt,
	}, nil
}

func invalidKey() *Error {
	return &Error{Status: 401, Code: CodeInvalidKey,
		Detail: "this API key is not recognised",
		Hint:   "check that the key was copied whole and belongs to this Veref server"}
}
