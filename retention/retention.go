// Package retention deletes what Veref no longer needs to keep, in small
// batches so no sweep holds long locks: usage rows, idempotency records,
// agent conversations, spent token counts, expired CLI login sessions and,
// only when an age is configured, audit events.
package retention

import (
	"context"
	"time"

	"github.com/verefwork/veref/store"
)

// Defaults for Sweeper.
const (
	DefaultUsage         = 90 * 24 * time.Hour
	DefaultIdempotency   = 24 * time.Hour // as Stripe keeps idempotency keys
	DefaultConversations = 30 * 24 * time.Hour
	// DefaultAgentSpend keeps a few days of token counts beyond today's.
	DefaultAgentSpend = 7 * 24 * time.Hour
	// DefaultCLISessions is how long after expiry a login session is kept,
	// so a late poll still hears expired_token rather than an unknown code.
	DefaultCLISessions = 24 * time.Hour
	DefaultBatch       = 1000
	DefaultInterval    = time.Hour
)

// Sweeper deletes rows older than their ages. Zero ages take the defaults,
// except Audit: zero keeps audit events forever.
type Sweeper struct {
	Store         store.Store
	Now           func() time.Time
	Usage         time.Duration
	Idempotency   time.Duration
	Conversations time.Duration
	AgentSpend    time.Duration
	CLISessions   time.Duration
	Audit         time.Duration
	Batch         int
	Interval      time.Duration
	// Log is told what a sweep deleted, or why it failed.
	Log func(deleted map[store.PurgeKind]int, err error)
}

// rules are the kinds with the age before which rows go.
func (s *Sweeper) rules() []struct {
	kind store.PurgeKind
	age  time.Duration
} {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	rules := []struct {
		kind store.PurgeKind
		age  time.Duration
	}{
		{store.PurgeUsage, or(s.Usage, DefaultUsage)},
		{store.PurgeIdempotency, or(s.Idempotency, DefaultIdempotency)},
		{store.PurgeConversations, or(s.Conversations, DefaultConversations)},
		{store.PurgeAgentSpend, or(s.AgentSpend, DefaultAgentSpend)},
		{store.PurgeCLISessions, or(s.CLISessions, DefaultCLISessions)},
	}
	if s.Audit > 0 {
		rules = append(rules, struct {
			kind store.PurgeKind
			age  time.Duration
		}{store.PurgeAudit, s.Audit})
	}
	return rules
}

// Sweep runs one pass, on one instance at a time: ran is false when another
// instance holds the sweep. It stops early, with what it did, when ctx ends.
func (s *Sweeper) Sweep(ctx context.Context) (deleted map[store.PurgeKind]int, ran bool, err error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	batch := s.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	deleted = map[store.PurgeKind]int{}
	ran, err = s.Store.Exclusive(ctx, "retention", func(ctx context.Context) error {
		for _, r := range s.rules() {
			before := now().Add(-r.age)
			for {
				n, err := s.Store.Purge(ctx, r.kind, before, batch)
				deleted[r.kind] += n
				if err != nil {
					return err
				}
				if n < batch {
					break
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return deleted, ran, err
}

// Run sweeps at once and then every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		deleted, ran, err := s.Sweep(ctx)
		if s.Log != nil && ran && (err != nil || total(deleted) > 0) {
			s.Log(deleted, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func total(m map[store.PurgeKind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
