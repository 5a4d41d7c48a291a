package tools

import (
	"context"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/quota"
)

// Deps are what the operations need beyond the transaction Invoke gives them.
type Deps struct {
	Now func() time.Time
	// Hasher keys the stored hashes of invitation and share tokens.
	Hasher *auth.Hasher
	// PublicURL is the base of links sent to referees and share links,
	// e.g. https://api.veref.work.
	PublicURL string
	// DefaultRateLimit is the limit of keys without their own, shown by whoami.
	DefaultRateLimit auth.RateLimit
	// AgentTokens is the Ask Veref daily budget, shown by whoami; nil hides it.
	AgentTokens *quota.AgentTokens
	// MailLogOnly says live invitation e-mails are only logged, not sent:
	// live referees invited are then "queued", not "sent". The test
	// environment never sends e-mail either way and says "sent", as the
	// live one does with a relay, handing out the links instead.
	MailLogOnly bool
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
	}, c.whoami)
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
	TenantID    string          `json:"tenantId"`
	RecruiterID string          `json:"recruiterId"`
	Environment string          `json:"environment" enum:"live,test"`
	KeyID       string          `json:"keyId"`
	KeyPrefix   string          `json:"keyPrefix"`
	KeyName     string          `json:"keyName"`
	Scopes      []auth.Scope    `json:"scopes"`
	ExpiresAt   *time.Time      `json:"expiresAt,omitempty"`
	RateLimit   *auth.RateLimit `json:"rateLimit,omitempty" doc:"Requests this key may make per second, minute or hour"`
	AllowedIPs  []string        `json:"allowedIps" doc:"CIDRs this key may be used from; empty means any address"`
	Agent       *quota.Status   `json:"agent,omitempty" doc:"Ask Veref's daily token budget and today's spend"`
}

// AuditTarget is the key itself.
func (w Whoami) AuditTarget() string { return w.KeyID }

func (c *catalogue) whoami(ctx context.Context, p auth.Principal, _ WhoamiInput) (Whoami, error) {
	w := Whoami{
		TenantID: p.TenantID, RecruiterID: p.RecruiterID, Environment: string(p.Environment),
		KeyID: p.KeyID, KeyPrefix: p.KeyPrefix, KeyName: p.KeyName, Scopes: p.Scopes, ExpiresAt: p.ExpiresAt,
		RateLimit: p.RateLimit, AllowedIPs: make([]string, 0, len(p.AllowedIPs)),
	}
	if w.RateLimit == nil && c.deps.DefaultRateLimit.Requests > 0 {
		rl := c.deps.DefaultRateLimit
		w.RateLimit = &rl
	}
	for _, a := range p.AllowedIPs {
		w.AllowedIPs = append(w.AllowedIPs, a.String())
	}
	if c.deps.AgentTokens != nil {
		st, err := c.deps.AgentTokens.Shown(ctx, p)
		if err != nil {
			return Whoami{}, err
		}
		w.Agent = &st
	}
	return w, nil
}
