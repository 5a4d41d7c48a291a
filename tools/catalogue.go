package tools

import (
	"context"
	"time"

	"github.com/verefwork/veref/auth"
)

// Deps are what the operations need beyond the transaction Invoke gives them.
type Deps struct {
	Now func() time.Time
	// Hasher keys the stored hashes of invitation and share tokens.
	Hasher *auth.Hasher
	// PublicURL is the base of links sent to referees and share links,
	// e.g. https://api.veref.work.
	PublicURL string
}

// catalogue is the operations' shared dependencies.
type catalogue struct {
	r    *Registry
	deps Deps
}

func (c *catalogue) now() time.Time { return c.deps.Now().UTC().Truncate(time.Microsecond) }

// New registers the whole Veref catalogue on r. The order here is the order
// tools are listed to MCP clients and models.
func New(r *Registry, d Deps) *Registry {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Hasher == nil {
		panic("tools: Deps.Hasher is required")
	}
	c := &catalogue{r: r, deps: d}
	Add(r, Spec{
		Name:        "whoami",
		Title:       "Who am I",
		Description: "Returns the tenant, recruiter, environment and scopes of the API key making the call. Use it to check which operations are allowed before calling them.",
		ReadOnly:    true, Idempotent: true,
		HTTP:   Binding{Method: "GET", Path: "/me"},
		Target: "api_key",
	}, whoami)
	c.candidates()
	c.references()
	c.reports()
	c.valuations()
	return r
}

// WhoamiInput takes nothing: identity comes from the key alone.
type WhoamiInput struct{}

// Whoami describes the calling key.
type Whoami struct {
	TenantID    string       `json:"tenantId"`
	RecruiterID string       `json:"recruiterId"`
	Environment string       `json:"environment" enum:"live,test"`
	KeyID       string       `json:"keyId"`
	KeyPrefix   string       `json:"keyPrefix"`
	KeyName     string       `json:"keyName"`
	Scopes      []auth.Scope `json:"scopes"`
	ExpiresAt   *time.Time   `json:"expiresAt,omitempty"`
}

// AuditTarget is the key itself.
func (w Whoami) AuditTarget() string { return w.KeyID }

func whoami(_ context.Context, p auth.Principal, _ WhoamiInput) (Whoami, error) {
	return Whoami{
		TenantID: p.TenantID, RecruiterID: p.RecruiterID, Environment: string(p.Environment),
		KeyID: p.KeyID, KeyPrefix: p.KeyPrefix, KeyName: p.KeyName, Scopes: p.Scopes, ExpiresAt: p.ExpiresAt,
	}, nil
}
