package auth

import (
	"context"
	"net/netip"
	"time"
)

// Principal is who is calling, derived only from a verified credential.
// Tenancy and environment for every query come from here and nowhere else.
type Principal struct {
	TenantID    string      `json:"tenantId"`
	Environment Environment `json:"environment"`
	RecruiterID string      `json:"recruiterId"`
	KeyID       string      `json:"keyId"`
	KeyPrefix   string      `json:"keyPrefix"`
	KeyName     string      `json:"keyName"`
	Scopes      []Scope     `json:"scopes"`
	ExpiresAt   *time.Time  `json:"expiresAt,omitempty"`
	// RateLimit and AgentDailyTokens are nil when the key takes the
	// server's defaults; AllowedIPs empty means any address.
	RateLimit        *RateLimit     `json:"rateLimit,omitempty"`
	AllowedIPs       []netip.Prefix `json:"allowedIps,omitempty"`
	AgentDailyTokens *int64         `json:"agentDailyTokens,omitempty"`
}

// Can reports whether the principal satisfies p.
func (p Principal) Can(pol Policy) bool { return pol.Allows(p.Scopes) }

type principalKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal put there by the authenticator.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
