package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

const shards = 64

// Local is a GCRA limiter in this process's memory. Each bucket is one
// time (its theoretical arrival time), so a million keys cost a few MB; a
// bucket back at full is dropped by the next sweep.
type Local struct {
	Now    func() time.Time
	seed   maphash.Seed
	once   sync.Once
	shards [shards]shard
}

type shard struct {
	mu        sync.Mutex
	tat       map[string]time.Time
	lastSweep time.Time
}

// NewLocal returns an in-process limiter on the given clock (nil: time.Now).
func NewLocal(now func() time.Time) *Local {
	l := &Local{Now: now}
	l.init()
	return l
}

func (l *Local) init() {
	l.once.Do(func() {
		if l.Now == nil {
			l.Now = time.Now
		}
		l.seed = maphash.MakeSeed()
		for i := range l.shards {
			l.shards[i].tat = map[string]time.Time{}
		}
	})
}

// AllowN implements Limiter.
func (l *Local) AllowN(_ context.Context, key string, lim Limit, n int) Result {
	l.init()
	now := l.Now()
	s := &l.shards[maphash.String(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.tat[key]
	// A look (n = 0) asks whether one more request would pass.
	res, next := gcra(now, tat, ok, lim, max(n, 1))
	if n == 0 && res.Allowed {
		res.Remaining++
		res.ResetAfter = max(tat.Sub(now), 0)
	}
	if res.Allowed && n > 0 {
		s.tat[key] = next
	}
	if now.Sub(s.lastSweep) > time.Minute {
		s.sweep(now)
	}
	return res
}

// sweep drops buckets that are full again: forgetting them changes nothing.
func (s *shard) sweep(now time.Time) {
	for k, t := range s.tat {
		if !t.After(now) {
			delete(s.tat, k)
		}
	}
	s.lastSweep = now
}

// gcra is the generic cell rate algorithm with burst = Requests: each
// request moves the theoretical arrival time (tat) on by one emission
// interval; a request is refused while tat would be more than one window
// ahead of now.
func gcra(now, tat time.Time, known bool, lim Limit, n int) (Result, time.Time) {
	if lim.Requests <= 0 || lim.Window <= 0 {
		return Result{Allowed: true, Remaining: 0}, tat
	}
	interval := lim.Window / time.Duration(lim.Requests)
	if !known || tat.Before(now) {
		tat = now
	}
	next := tat.Add(time.Duration(n) * interval)
	allowAt := next.Add(-lim.Window)
	if d := allowAt.Sub(now); d > 0 {
		// Refused: report from the unchanged tat.
		return Result{Allowed: false, Remaining: remaining(now, tat, lim, interval),
			RetryAfter: d, ResetAfter: tat.Sub(now)}, tat
	}
	return Result{Allowed: true, Remaining: remaining(now, next, lim, interval), ResetAfter: next.Sub(now)}, next
}

func remaining(now, tat time.Time, lim Limit, interval time.Duration) int {
	free := lim.Window - tat.Sub(now)
	if free <= 0 {
		return 0
	}
	r := int(free / interval)
	return min(r, lim.Requests)
}
