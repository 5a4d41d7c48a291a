// Package quota keeps each key's daily token budget for Ask Veref, counted
// from the usage the model provider reports and stored per UTC day so every
// instance sees the same total.
package quota

import (
	"context"
	"time"

	"github.com/verefwork/veref/auth"
)

// DefaultAgentDailyTokens is the budget of a key that names none.
const DefaultAgentDailyTokens int64 = 1_000_000

// Spend is what the store keeps: tokens per key and UTC day.
type Spend interface {
	AddAgentTokens(ctx context.Context, keyID, day string, tokens int64) error
	AgentTokens(ctx context.Context, keyID, day string) (int64, error)
}

// AgentTokens is the daily budget. Default applies to keys without their own.
type AgentTokens struct {
	Store   Spend
	Default int64
	Now     func() time.Time
}

// Status is a key's budget today, as /v1/api/me shows it.
type Status struct {
	DailyTokens int64     `json:"dailyTokens" doc:"Tokens Ask Veref may use per UTC day with this key"`
	UsedToday   int64     `json:"usedToday" doc:"Tokens used since the last UTC midnight, as the model provider reported them"`
	Remaining   int64     `json:"remaining"`
	ResetsAt    time.Time `json:"resetsAt" doc:"The next UTC midnight"`
}

// Exceeded reports whether nothing is left today.
func (s Status) Exceeded() bool { return s.Remaining <= 0 }

func (a *AgentTokens) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// Budget is the key's own budget or the default.
func (a *AgentTokens) Budget(p auth.Principal) int64 {
	if p.AgentDailyTokens != nil {
		return *p.AgentDailyTokens
	}
	if a.Default > 0 {
		return a.Default
	}
	return DefaultAgentDailyTokens
}

// Status reads today's spend of p's key.
func (a *AgentTokens) Status(ctx context.Context, p auth.Principal) (Status, error) {
	now := a.now()
	used, err := a.Store.AgentTokens(ctx, p.KeyID, now.Format(time.DateOnly))
	if err != nil {
		return Status{}, err
	}
	budget := a.Budget(p)
	return Status{DailyTokens: budget, UsedToday: used, Remaining: max(budget-used, 0), ResetsAt: NextMidnight(now)}, nil
}

// Charge adds tokens to today's spend of keyID.
func (a *AgentTokens) Charge(ctx context.Context, keyID string, tokens int) error {
	if tokens <= 0 || keyID == "" {
		return nil
	}
	return a.Store.AddAgentTokens(ctx, keyID, a.now().Format(time.DateOnly), int64(tokens))
}

// NextMidnight is the first UTC midnight after t.
func NextMidnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}
