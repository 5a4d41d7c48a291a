// Package quota keeps each key's daily token budget for Ask Veref, counted
// from the usage the model provider reports and stored per UTC day so every
// instance sees the same total.
package quota

import (
	"context"
	"sync"
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
	// ShowFor is how long Shown may reuse a count it read, so GET
	// /v1/api/me does not read the store on every request. Charges made by
	// this process show at once; other instances' within ShowFor. Zero
	// reads every time. Enforcement (Status) always reads the store.
	ShowFor time.Duration

	mu    sync.Mutex
	shown map[string]shownSpend // by key id
}

// ShowFor of serve: a budget counted in tokens per day moves little in a
// few seconds, and an agent run is refused from the store's count anyway.
const DefaultShowFor = 5 * time.Second

// maxShown bounds the cache; past it the cache starts over, which costs
// one read per key and nothing else.
const maxShown = 10_000

type shownSpend struct {
	day  string
	used int64
	read time.Time // time.Now of the read: its monotonic clock ages it
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

// Status reads today's spend of p's key from the store: what a run is
// allowed or refused by.
func (a *AgentTokens) Status(ctx context.Context, p auth.Principal) (Status, error) {
	now := a.now()
	day := now.Format(time.DateOnly)
	used, err := a.Store.AgentTokens(ctx, p.KeyID, day)
	if err != nil {
		return Status{}, err
	}
	a.remember(p.KeyID, day, used)
	return a.status(p, now, used), nil
}

// Shown is Status for display (/v1/api/me, whoami, a key's detail): a
// count read within ShowFor is reused instead of read again.
func (a *AgentTokens) Shown(ctx context.Context, p auth.Principal) (Status, error) {
	if a.ShowFor > 0 {
		now := a.now()
		var b [16]byte // the day compared without allocating it
		day := now.AppendFormat(b[:0], time.DateOnly)
		a.mu.Lock()
		c, ok := a.shown[p.KeyID]
		a.mu.Unlock()
		if ok && c.day == string(day) && time.Since(c.read) < a.ShowFor {
			return a.status(p, now, c.used), nil
		}
	}
	return a.Status(ctx, p)
}

func (a *AgentTokens) status(p auth.Principal, now time.Time, used int64) Status {
	budget := a.Budget(p)
	return Status{DailyTokens: budget, UsedToday: used, Remaining: max(budget-used, 0), ResetsAt: NextMidnight(now)}
}

func (a *AgentTokens) remember(keyID, day string, used int64) {
	if a.ShowFor <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.shown == nil || len(a.shown) >= maxShown {
		a.shown = make(map[string]shownSpend)
	}
	a.shown[keyID] = shownSpend{day: day, used: used, read: time.Now()}
}

// Charge adds tokens to today's spend of keyID.
func (a *AgentTokens) Charge(ctx context.Context, keyID string, tokens int) error {
	if tokens <= 0 || keyID == "" {
		return nil
	}
	err := a.Store.AddAgentTokens(ctx, keyID, a.now().Format(time.DateOnly), int64(tokens))
	// Forget the count (even on error: the write may have landed), so the
	// next display reads what this process just spent.
	a.mu.Lock()
	delete(a.shown, keyID)
	a.mu.Unlock()
	return err
}

// NextMidnight is the first UTC midnight after t.
func NextMidnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}
