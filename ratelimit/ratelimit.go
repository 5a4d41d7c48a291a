// Package ratelimit decides whether a caller may make one more request:
// GCRA with the burst equal to the limit, kept in the process or shared by
// every instance through Redis. It knows nothing of HTTP or keys; callers
// name the bucket.
package ratelimit

import (
	"context"
	"time"
)

// Limit allows Requests per Window, all of them at once if saved up.
type Limit struct {
	Requests int
	Window   time.Duration
}

// Result is the decision and what the RateLimit headers report.
type Result struct {
	Allowed bool
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// RetryAfter is how long until the next request is allowed (0 when allowed).
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
}

// Limiter takes n requests from the bucket called key; n = 0 only looks.
// It never fails: a store it cannot reach is the implementation's problem.
type Limiter interface {
	AllowN(ctx context.Context, key string, l Limit, n int) Result
}
