package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// KeyService creates and revokes API keys. The management routes and the
// operator CLI share it so the rules are the same from both.
type KeyService struct {
	Store     store.Store
	Hasher    *auth.Hasher
	Now       func() time.Time
	MaxActive int
	// Defaults given to a key created without its own limits.
	DefaultRate        auth.RateLimit
	DefaultAgentTokens int64
}

// Actor is who is managing keys, recorded on the audit event.
type Actor struct {
	Kind store.ActorKind // store.ActorRecruiter or store.ActorOperator
	ID   string
	// Surface goes on the audit event ("management" when empty): the
	// console and the CLI are told apart in the trail. The trace id is the
	// one in the call's context.
	Surface store.Surface
}

func (by Actor) actor() store.Actor { return store.Actor{Kind: by.Kind, ID: by.ID} }

// NewKey is a request to mint a key.
type NewKey struct {
	TenantID    string
	RecruiterID string
	Name        string
	Environment auth.Environment
	Scopes      []string
	ExpiresAt   *time.Time
	LimitsChange
}

// LimitsChange is a change to a key's limits; nil fields stay as they are
// (at creation: take the defaults). An empty, non-nil AllowedIPs clears
// the allowlist.
type LimitsChange struct {
	RateLimit        *auth.RateLimit
	AllowedIPs       []string
	AgentDailyTokens *int64
}

// MaxAgentDailyTokens bounds a key's daily token budget.
const MaxAgentDailyTokens int64 = 1_000_000_000_000

// apply validates c and returns l with c applied.
func (c LimitsChange) apply(l store.KeyLimits) (store.KeyLimits, error) {
	if c.RateLimit != nil {
		if err := c.RateLimit.Validate(); err != nil {
			return l, tools.Invalid("rateLimit", err.Error())
		}
		rl := *c.RateLimit
		l.RateLimit = &rl
	}
	if c.AllowedIPs != nil {
		ips, err := auth.NormalizeAllowlist(c.AllowedIPs)
		var ae *auth.AllowlistError
		if errors.As(err, &ae) {
			return l, tools.Invalid(fmt.Sprintf("allowedIps[%d]", ae.Index), ae.Error())
		}
		if err != nil {
			return l, tools.Invalid("allowedIps", err.Error())
		}
		l.AllowedIPs = ips
		if len(ips) == 0 {
			l.AllowedIPs = nil
		}
	}
	if c.AgentDailyTokens != nil {
		n := *c.AgentDailyTokens
		if n < 0 || n > MaxAgentDailyTokens {
			return l, tools.Invalid("agentDailyTokens", fmt.Sprintf("agentDailyTokens must be between 0 and %d", MaxAgentDailyTokens))
		}
		l.AgentDailyTokens = &n
	}
	return l, nil
}

// ExceedsDefaults says whether c gives more than a key gets by default,
// which only tenant admins may do.
func (ks *KeyService) ExceedsDefaults(c LimitsChange) bool {
	d := ks.DefaultRate
	if c.RateLimit != nil && d.Requests > 0 &&
		float64(c.RateLimit.Requests)/c.RateLimit.Window().Seconds() > float64(d.Requests)/d.Window().Seconds() {
		return true
	}
	return c.AgentDailyTokens != nil && ks.DefaultAgentTokens > 0 && *c.AgentDailyTokens > ks.DefaultAgentTokens
}

// KeyView is a key's metadata as shown to its owners; never the secret.
type KeyView struct {
	ID               string          `json:"id"`
	Name             string          `json:"name"`
	Prefix           string          `json:"prefix" doc:"Public part of the key, safe to log"`
	Environment      string          `json:"environment" enum:"live,test"`
	RecruiterID      string          `json:"recruiterId"`
	Scopes           []string        `json:"scopes" doc:"Empty means all scopes"`
	Status           string          `json:"status" enum:"active,suspended,expired,revoked"`
	CreatedAt        time.Time       `json:"createdAt"`
	ExpiresAt        *time.Time      `json:"expiresAt,omitempty"`
	RevokedAt        *time.Time      `json:"revokedAt,omitempty"`
	RevokedBy        string          `json:"revokedBy,omitempty"`
	RevokeNote       string          `json:"revokeNote,omitempty"`
	LastUsedAt       *time.Time      `json:"lastUsedAt,omitempty"`
	SuspendedAt      *time.Time      `json:"suspendedAt,omitempty"`
	SuspendNote      string          `json:"suspendNote,omitempty"`
	RolledFrom       string          `json:"rolledFrom,omitempty" doc:"The key this one replaced in a roll"`
	RolledTo         string          `json:"rolledTo,omitempty" doc:"The key that replaced this one in a roll"`
	RateLimit        *auth.RateLimit `json:"rateLimit,omitempty" doc:"Absent on keys older than rate limits: the server's default applies"`
	AllowedIPs       []string        `json:"allowedIps" doc:"CIDRs the key may be used from; empty means any address"`
	AgentDailyTokens *int64          `json:"agentDailyTokens,omitempty" doc:"Ask Veref tokens per UTC day; absent: the server's default"`
	// Agent is today's Ask Veref spend, on a single key's detail.
	Agent *quota.Status `json:"agent,omitempty"`
}

// CreatedKey is the one response that carries the plaintext token.
type CreatedKey struct {
	APIKey    KeyView `json:"apiKey"`
	Plaintext string  `json:"plaintext" doc:"The API key. It is shown once and cannot be recovered."`
}

// View renders a stored key.
func View(k store.APIKey, now time.Time) KeyView {
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	v := KeyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Environment: string(k.Environment),
		RecruiterID: k.RecruiterID, Scopes: scopes, Status: k.Status(now), CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, RevokedBy: k.RevokedBy, RevokeNote: k.RevokeNote,
		LastUsedAt: k.LastUsedAt, SuspendedAt: k.SuspendedAt, SuspendNote: k.SuspendNote,
		RolledFrom: k.RolledFrom, RolledTo: k.RolledTo,
		RateLimit: k.RateLimit, AllowedIPs: k.AllowedIPs, AgentDailyTokens: k.AgentDailyTokens}
	if v.AllowedIPs == nil {
		v.AllowedIPs = []string{}
	}
	return v
}

// Create validates req, mints the token and stores its hash with an audit
// event in one transaction.
func (ks *KeyService) Create(ctx context.Context, req NewKey, by Actor) (CreatedKey, error) {
	var created CreatedKey
	err := ks.Store.InTx(ctx, func(q store.Queries) error {
		var err error
		created, err = ks.CreateIn(ctx, q, req, by)
		return err
	})
	if err != nil {
		return CreatedKey{}, err
	}
	return created, nil
}

// CreateIn is Create inside the caller's transaction, for a key minted
// together with another change (a CLI login being redeemed).
func (ks *KeyService) CreateIn(ctx context.Context, q store.Queries, req NewKey, by Actor) (CreatedKey, error) {
	now := ks.Now().UTC()
	name := strings.TrimSpace(req.Name)
	if n := utf8.RuneCountInString(name); n < 3 || n > 50 {
		return CreatedKey{}, tools.Invalid("name", "the name must be 3 to 50 characters")
	}
	if !req.Environment.Valid() {
		return CreatedKey{}, tools.Invalid("environment", "environment must be live or test")
	}
	scopes, err := auth.ParseScopes(req.Scopes)
	if err != nil {
		return CreatedKey{}, tools.Invalid("scopes", err.Error())
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		return CreatedKey{}, tools.Invalid("expiresAt", "expiresAt must be in the future")
	}
	limits, err := req.LimitsChange.apply(ks.defaultLimits())
	if err != nil {
		return CreatedKey{}, err
	}
	tok, err := auth.NewToken(req.Environment)
	if err != nil {
		return CreatedKey{}, err
	}
	k := store.APIKey{
		ID: store.NewID("key"), TenantID: req.TenantID, RecruiterID: req.RecruiterID, Name: name,
		Prefix: tok.Prefix, Environment: req.Environment, Hash: ks.Hasher.Hash(tok.String()),
		Scopes: scopes, CreatedAt: now, ExpiresAt: req.ExpiresAt, KeyLimits: limits,
	}
	if _, err := q.GetRecruiter(ctx, req.TenantID, req.RecruiterID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return CreatedKey{}, tools.NotFound("recruiter", req.RecruiterID)
		}
		return CreatedKey{}, err
	}
	// Two creates counting at once would both see room under the cap:
	// the second waits here until the first commits.
	if err := q.LockTenant(ctx, req.TenantID); err != nil {
		return CreatedKey{}, err
	}
	n, err := q.CountActiveAPIKeys(ctx, req.TenantID, now)
	if err != nil {
		return CreatedKey{}, err
	}
	if n >= ks.MaxActive {
		return CreatedKey{}, &tools.Error{Code: problem.Conflict,
			Message: fmt.Sprintf("the tenant already has %d active keys, the most allowed", n),
			Hint:    "revoke keys that are no longer used, then try again"}
	}
	if err := q.InsertAPIKey(ctx, k); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return CreatedKey{}, &tools.Error{Code: problem.Conflict, Field: "name",
				Message: fmt.Sprintf("a key named %q already exists in this tenant", name)}
		}
		return CreatedKey{}, err
	}
	err = q.InsertAudit(ctx, keyEvent(ctx, k, by, "api_key.create",
		map[string]any{"name": name, "prefix": k.Prefix, "scopes": View(k, now).Scopes, "limits": limits}, now))
	if err != nil {
		return CreatedKey{}, err
	}
	return CreatedKey{APIKey: View(k, now), Plaintext: tok.String()}, nil
}

// Revoke permanently disables a key; the next request with it fails.
func (ks *KeyService) Revoke(ctx context.Context, tenantID, id, note string, by Actor) (KeyView, error) {
	now := ks.Now().UTC()
	if len(note) > 500 {
		return KeyView{}, tools.Invalid("note", "the note must be at most 500 characters")
	}
	var out store.APIKey
	err := ks.Store.InTx(ctx, func(q store.Queries) error {
		k, err := q.GetAPIKey(ctx, tenantID, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return tools.NotFound("API key", id)
			}
			return err
		}
		if k.RevokedAt != nil {
			return &tools.Error{Code: problem.Conflict, Message: "this key was already revoked on " + k.RevokedAt.UTC().Format(time.RFC3339)}
		}
		if out, err = q.RevokeAPIKey(ctx, tenantID, id, by.ID, note, now); err != nil {
			return err
		}
		return q.InsertAudit(ctx, keyEvent(ctx, k, by, "api_key.revoke", map[string]any{"note": note}, now))
	})
	if err != nil {
		return KeyView{}, err
	}
	return View(out, now), nil
}

// defaultLimits are what a new key gets when its creator names none.
func (ks *KeyService) defaultLimits() store.KeyLimits {
	var l store.KeyLimits
	if ks.DefaultRate.Requests > 0 {
		rl := ks.DefaultRate
		l.RateLimit = &rl
	}
	if ks.DefaultAgentTokens > 0 {
		n := ks.DefaultAgentTokens
		l.AgentDailyTokens = &n
	}
	return l
}

// UpdateLimits changes a key's rate limit, allowlist or token budget (its
// scopes never change) and audits the change with before and after.
func (ks *KeyService) UpdateLimits(ctx context.Context, tenantID, id string, c LimitsChange, by Actor) (KeyView, error) {
	now := ks.Now().UTC()
	var out store.APIKey
	err := ks.Store.InTx(ctx, func(q store.Queries) error {
		k, err := q.GetAPIKey(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return tools.NotFound("API key", id)
		}
		if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return tools.Conflict("this key was revoked on " + k.RevokedAt.UTC().Format(time.RFC3339) + "; its limits no longer matter")
		}
		limits, err := c.apply(k.KeyLimits)
		if err != nil {
			return err
		}
		if out, err = q.SetAPIKeyLimits(ctx, tenantID, id, limits); err != nil {
			return err
		}
		return q.InsertAudit(ctx, keyEvent(ctx, k, by, "api_key.update_limits", map[string]any{"before": k.KeyLimits, "after": limits}, now))
	})
	if err != nil {
		return KeyView{}, err
	}
	return View(out, now), nil
}
