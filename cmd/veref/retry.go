package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// A 503 is a storage outage or deadline, or a commit whose outcome is
// unknown; a connection that fails may have failed before or after the
// server acted. Both pass by themselves, and every request is safe to send
// again: the CLI sends an Idempotency-Key with every change, so a saved
// first attempt answers its result instead of making a second copy. So the
// client retries them, with backoff and jitter, never sooner than the
// server's Retry-After, and within bounds.
const (
	retryTries      = 4
	retryFirstPause = 500 * time.Millisecond
	retryMaxElapsed = 10 * time.Second
)

// retryable is a failure worth sending the same request again for.
type retryable struct {
	err   error
	after time.Duration // the server's Retry-After; zero when none
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// retryAfter reads a Retry-After in seconds (the form this server sends).
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(min(s, 60)) * time.Second
}

// afterBackOff is exponential backoff with jitter that waits at least the
// last Retry-After, itself spread by up to a quarter so clients told the
// same thing do not all come back at once.
type afterBackOff struct {
	exp   *backoff.ExponentialBackOff
	after time.Duration
}

func (a *afterBackOff) Reset() { a.exp.Reset() }

func (a *afterBackOff) NextBackOff() time.Duration {
	next := a.exp.NextBackOff()
	if a.after > 0 {
		next = max(next, a.after+rand.N(a.after/4+1))
	}
	return next
}

// gaveUp is the last failure after every try, saying how to go on.
type gaveUp struct {
	err   error
	tries int
	idem  string
}

func (g gaveUp) Error() string {
	msg := fmt.Sprintf("%v (gave up after %d attempts)", g.err, g.tries)
	if g.idem != "" {
		msg += "; the change may or may not have been saved: run the command again with --idempotency-key " + g.idem +
			" to get its result without making a second copy"
	}
	return msg
}

func (g gaveUp) Unwrap() error { return g.err }

// withRetries runs once until it succeeds, fails in a way a retry cannot
// cure, or the bounds are reached.
func withRetries[T any](ctx context.Context, idem string, once func() (T, error)) (T, error) {
	exp := backoff.NewExponentialBackOff()
	exp.InitialInterval = retryFirstPause
	wait := &afterBackOff{exp: exp}
	tries := 0
	res, err := backoff.Retry(ctx, func() (T, error) {
		tries++
		res, err := once()
		var r *retryable
		switch {
		case err == nil:
			return res, nil
		case errors.As(err, &r) && ctx.Err() == nil:
			wait.after = r.after
			return res, err
		default:
			return res, backoff.Permanent(err)
		}
	}, backoff.WithBackOff(wait), backoff.WithMaxTries(retryTries), backoff.WithMaxElapsedTime(retryMaxElapsed))
	var r *retryable
	if errors.As(err, &r) {
		if tries > 1 {
			return res, gaveUp{err: r.err, tries: tries, idem: idem}
		}
		return res, r.err
	}
	return res, err
}
