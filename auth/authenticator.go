package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/verefwork/veref/problem"
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
	SuspendedAt *time.Time
	// RolledTo is the id of the key that replaced this one, if any: its
	// expiry is then the end of the roll's grace.
	RolledTo string
	// Limits; nil or empty means the server's defaults (any address).
	RateLimit        *RateLimit
	AllowedIPs       []string
	AgentDailyTokens *int64
}

// ErrKeyNotFound is what a KeyLookup returns for an unknown prefix.
var ErrKeyNotFound = errors.New("auth: key not found")

// KeyLookup finds a key by its public prefix. The store implements it.
type KeyLookup interface {
	KeyByPrefix(ctx context.Context, prefix string) (KeyRecord, error)
}

// FreshKeyLookup is implemented by stores whose plain lookup may read a
// snapshot older than a change they have already announced (SQLite's read
// pool beside its single writer). A record is cached only as read through
// FreshKeyByPrefix, so an announced change can never be cached over.
type FreshKeyLookup interface {
	FreshKeyByPrefix(ctx context.Context, prefix string) (KeyRecord, error)
}

// Authenticator turns a presented credential into a Principal. Every surface
// (REST, MCP, agent) goes through the same one.
type Authenticator struct {
	Keys   KeyLookup
	Hasher *Hasher
	Now    func() time.Time
	// Cache, when set, remembers successful verifications; it must be fed
	// by the store's key events (see KeyEvents) or it stays bypassed.
	Cache *KeyCache
	// LookupTimeout bounds the key lookup (VEREF_AUTH_TIMEOUT, default
	// DefaultLookupTimeout). It is on every request's path, so it is
	// shorter than other storage calls: a stalled database turns into
	// quick 503s instead of piling requests up.
	LookupTimeout time.Duration
}

// DefaultLookupTimeout is the key lookup's deadline when none is set.
const DefaultLookupTimeout = 2 * time.Second

// CredentialFromHeaders picks the token from "Authorization: Bearer" or
// "x-api-key". Both present and different is refused rather than guessed.
func CredentialFromHeaders(authorization, apiKey string) (string, error) {
	authorization = strings.TrimSpace(authorization)
	apiKey = strings.TrimSpace(apiKey)
	var bearer string
	if authorization != "" {
		scheme, rest, ok := strings.Cut(authorization, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			return "", &Error{Code: problem.AuthInvalidFormat,
				Detail: "the Authorization header must be 'Bearer <API key>'",
				Hint:   "send Authorization: Bearer vrf_… or x-api-key: vrf_…"}
		}
		bearer = strings.TrimSpace(rest)
	}
	switch {
	case bearer == "" && apiKey == "":
		return "", &Error{Code: problem.AuthMissing,
			Detail: "no API key was sent",
			Hint:   "send Authorization: Bearer vrf_… or x-api-key: vrf_…"}
	case bearer != "" && apiKey != "" && bearer != apiKey:
		return "", &Error{Code: problem.AuthInvalidFormat,
			Detail: "the Authorization and x-api-key headers carry different credentials",
			Hint:   "send the key in one header only"}
	case bearer != "":
		return bearer, nil
	default:
		return apiKey, nil
	}
}

// Authenticate verifies token and returns its principal. Shape and checksum
// are checked before storage is touched; a warm key is not looked up at all,
// but its hash, revocation and expiry are still checked on every request.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Principal, error) {
	t, err := ParseToken(token)
	if err != nil {
		return Principal{}, err
	}
	return a.AuthenticateToken(ctx, t)
}

// AuthenticateToken is Authenticate for a token already parsed, so a caller
// that needed its prefix first (the access log) does not parse it twice.
// t must come from ParseToken; any other Token is refused.
func (a *Authenticator) AuthenticateToken(ctx context.Context, t Token) (Principal, error) {
	token := t.raw
	if token == "" {
		return Principal{}, invalidKey()
	}
	if a.Cache != nil {
		if rec, ok := a.Cache.get(t.Prefix); ok {
			return a.check(token, t, rec)
		}
	}
	var gen uint64
	var loadedAt time.Time
	if a.Cache != nil {
		gen, loadedAt = a.Cache.begin(), a.now()
	}
	timeout := a.LookupTimeout
	if timeout <= 0 {
		timeout = DefaultLookupTimeout
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	rec, err := a.Keys.KeyByPrefix(lctx, t.Prefix)
	cancel()
	if errors.Is(err, ErrKeyNotFound) {
		return Principal{}, invalidKey()
	}
	if err != nil {
		return Principal{}, unavailable()
	}
	p, err := a.check(token, t, rec)
	if err == nil && a.Cache != nil {
		a.remember(ctx, token, t, gen, loadedAt, rec)
	}
	return p, err
}

// remember caches a record that just verified, re-read first where the
// store's plain read may be stale (FreshKeyLookup).
func (a *Authenticator) remember(ctx context.Context, token string, t Token, gen uint64, loadedAt time.Time, rec KeyRecord) {
	if f, ok := a.Keys.(FreshKeyLookup); ok {
		var err error
		if rec, err = f.FreshKeyByPrefix(ctx, t.Prefix); err != nil {
			return
		}
		if _, err := a.check(token, t, rec); err != nil {
			return
		}
	}
	a.Cache.put(gen, rec, loadedAt)
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// check is everything verification decides from the stored record.
func (a *Authenticator) check(token string, t Token, rec KeyRecord) (Principal, error) {
	// The environment is part of the hashed token, so a prefix collision
	// across environments still fails the comparison below.
	if !a.Hasher.Matches(token, rec.Hash) || rec.Environment != t.Env {
		return Principal{}, invalidKey()
	}
	if rec.RevokedAt != nil {
		return Principal{}, &Error{Code: problem.AuthRevokedKey,
			Detail: "this API key was revoked on " + rec.RevokedAt.UTC().Format(time.RFC3339),
			Hint:   "ask a tenant admin for a new key"}
	}
	if rec.SuspendedAt != nil {
		return Principal{}, &Error{Code: problem.AuthSuspendedKey,
			Detail: "this API key was suspended on " + rec.SuspendedAt.UTC().Format(time.RFC3339),
			Hint:   "ask the key's owner or a tenant admin to resume it"}
	}
	if rec.ExpiresAt != nil && !a.now().Before(*rec.ExpiresAt) {
		e := &Error{Code: problem.AuthExpiredKey,
			Detail: "this API key expired on " + rec.ExpiresAt.UTC().Format(time.RFC3339),
			Hint:   "create a new key"}
		if rec.RolledTo != "" {
			e.Detail = "this API key was rolled and its grace period ended on " + rec.ExpiresAt.UTC().Format(time.RFC3339)
			e.Hint = "use the key that replaced it (" + rec.RolledTo + "), shown once when the key was rolled"
		}
		return Principal{}, e
	}
	scopes := rec.Scopes
	if len(scopes) == 0 {
		scopes = allScopes
	}
	// Stored lists were checked when written; an entry that no longer
	// parses drops out rather than opening the key to every address.
	allowed, _ := ParseAllowlist(rec.AllowedIPs)
	if len(allowed) == 0 && len(rec.AllowedIPs) > 0 {
		allowed = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}
	}
	return Principal{
		TenantID: rec.TenantID, Environment: rec.Environment, RecruiterID: rec.RecruiterID,
		KeyID: rec.ID, KeyPrefix: rec.Prefix, KeyName: rec.Name, Scopes: scopes, ExpiresAt: rec.ExpiresAt,
		RateLimit: rec.RateLimit, AllowedIPs: allowed, AgentDailyTokens: rec.AgentDailyTokens,
	}, nil
}

// allScopes is shared by every all-scopes principal; nothing appends to a
// principal's scopes, and the three-index slice makes an append copy.
var allScopes = func() []Scope { s := AllScopes(); return s[:len(s):len(s)] }()

func unavailable() *Error {
	return &Error{Code: problem.Unavailable,
		Detail: "the key store is unavailable; try again shortly"}
}

func invalidKey() *Error {
	return &Error{Code: problem.AuthInvalidKey,
		Detail: "this API key is not recognised",
		Hint:   "check that the key was copied whole and belongs to this Veref server"}
}
