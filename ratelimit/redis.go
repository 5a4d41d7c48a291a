package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// NewRedisClient connects to url (redis://host:port/db) with timeouts
// short enough that a dead Redis costs a request milliseconds, not
// seconds, before the limiter falls back.
func NewRedisClient(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("VEREF_REDIS_URL: %w", err)
	}
	// Every call is bounded by Shared.Timeout; these only cap what a
	// caller without a deadline would wait. go-redis takes the earlier of
	// the two, so they must not be shorter than any Shared.Timeout: at
	// 100ms they silently cut a configured longer timeout short.
	opt.DialTimeout = time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	// Waiting for a pooled connection is bounded by the caller's per-call
	// timeout (Shared.Timeout), not by a pool timeout of its own: a burst
	// that briefly drains the pool should queue, not fall back.
	opt.PoolSize = max(opt.PoolSize, 64)
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1 // a retry doubles the wait; the fallback is the retry
	return redis.NewClient(opt), nil
}

// Shared keeps buckets in Redis so every instance enforces one limit per
// key. When Redis fails or is slower than Timeout, the decision is made by
// Local instead and Redis is left alone for Cooldown; requests never fail
// because of the limiter's store.
type Shared struct {
	Redis *redis.Client
	// Prefix namespaces the buckets (redis_rate adds its own "rate:").
	Prefix string
	// Local decides while Redis is unavailable.
	Local *Local
	// Timeout bounds one Redis call (default 50ms).
	Timeout time.Duration
	// Cooldown is how long to stay on Local after a failure (default 1s).
	Cooldown time.Duration
	// LogEvery bounds how often a failure is logged (default 1m).
	LogEvery time.Duration
	// Log is told about a failure at most once per LogEvery, with the
	// number of fallback decisions so far.
	Log func(err error, fallbacks uint64)
	// OnFallback is called for every in-process decision (a metric).
	OnFallback func()
	Now        func() time.Time

	fallbacks atomic.Uint64
	downUntil atomic.Int64
	lastLog   atomic.Int64
	rl        atomic.Pointer[redis_rate.Limiter]
}

// Fallbacks counts decisions made in-process because Redis was unavailable
// (for a metric: veref_ratelimit_fallbacks_total).
func (s *Shared) Fallbacks() uint64 { return s.fallbacks.Load() }

func (s *Shared) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// AllowN implements Limiter.
func (s *Shared) AllowN(ctx context.Context, key string, lim Limit, n int) Result {
	now := s.now()
	if now.UnixNano() < s.downUntil.Load() {
		s.fallbacks.Add(1)
		if s.OnFallback != nil {
			s.OnFallback()
		}
		return s.Local.AllowN(ctx, key, lim, n)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	res, err := s.limiter().AllowN(cctx, s.Prefix+key, redis_rate.Limit{Rate: lim.Requests, Burst: lim.Requests, Period: lim.Window}, n)
	if err != nil {
		s.fail(now, err)
		return s.Local.AllowN(ctx, key, lim, n)
	}
	out := Result{Allowed: res.Allowed >= n && (n > 0 || res.Remaining > 0), Remaining: res.Remaining, ResetAfter: res.ResetAfter}
	if res.RetryAfter > 0 {
		out.RetryAfter = res.RetryAfter
	}
	return out
}

func (s *Shared) limiter() *redis_rate.Limiter {
	if l := s.rl.Load(); l != nil {
		return l
	}
	l := redis_rate.NewLimiter(s.Redis)
	s.rl.Store(l)
	return l
}

func (s *Shared) fail(now time.Time, err error) {
	n := s.fallbacks.Add(1)
	if s.OnFallback != nil {
		s.OnFallback()
	}
	cooldown := s.Cooldown
	if cooldown <= 0 {
		cooldown = time.Second
	}
	s.downUntil.Store(now.Add(cooldown).UnixNano())
	every := s.LogEvery
	if every <= 0 {
		every = time.Minute
	}
	last := s.lastLog.Load()
	if now.UnixNano()-last >= int64(every) && s.lastLog.CompareAndSwap(last, now.UnixNano()) && s.Log != nil {
		s.Log(err, n)
	}
}
