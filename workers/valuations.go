// Package workers holds the background loops that drain the database queues:
// valuation runs and the e-mail outbox. They run in every server process and
// share the queues through leases, so any number of instances can run them.
package workers

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
	"github.com/verefwork/veref/tools"
)

// Logf is how workers report what they do; the caller decides where it goes.
type Logf func(level, msg string, fields map[string]any)

// ValuationWorker executes queued valuation runs. Any number of workers, in
// any number of processes, can share one PostgreSQL queue: ClaimValuation
// hands each run to one of them, and a run whose worker died is claimed
// again once its lease lapses.
type ValuationWorker struct {
	Store       store.Store
	Now         func() time.Time
	ID          string
	Lease       time.Duration // default 1 minute
	Poll        time.Duration // default 1 second
	MaxAttempts int           // default 5
	Log         Logf
}

func (w *ValuationWorker) defaults() {
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Lease <= 0 {
		w.Lease = time.Minute
	}
	if w.Poll <= 0 {
		w.Poll = time.Second
	}
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 5
	}
	if w.ID == "" {
		w.ID = "worker_" + auth.RandomString(8)
	}
	if w.Log == nil {
		w.Log = func(string, string, map[string]any) {}
	}
}

// Run works until ctx ends.
func (w *ValuationWorker) Run(ctx context.Context) {
	w.defaults()
	for ctx.Err() == nil {
		did, err := w.RunOnce(ctx)
		if err != nil {
			w.Log("warn", "valuation worker", map[string]any{"error": err.Error()})
		}
		if !did || err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(w.Poll):
			}
		}
	}
}

// RunOnce claims and executes at most one run; did is false when the queue
// had nothing due.
func (w *ValuationWorker) RunOnce(ctx context.Context) (did bool, err error) {
	w.defaults()
	now := w.Now().UTC()
	v, err := w.Store.ClaimValuation(ctx, now, now.Add(w.Lease))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v.WorkerID = w.ID
	ten := store.Tenancy{TenantID: v.TenantID, Environment: v.Environment}
	r, err := w.Store.GetReference(ctx, ten, v.RequestID)
	var score float64
	var comps *store.ValuationComponents
	var why string
	if err == nil {
		score, comps, why, err = tools.Valuate(r)
	}
	done := w.Now().UTC()
	if err != nil {
		// Callers read v.Error: keep internals (hosts, SQL) in the log only.
		w.Log("warn", "valuation attempt failed", map[string]any{"valuation": v.ID, "attempt": v.Attempts, "error": err.Error()})
		te := tools.AsError(err)
		v.Error = te.Message
		// Only a storage hiccup is worth another attempt; anything else
		// would fail the same way every time.
		if v.Attempts >= w.MaxAttempts || te.Code != problem.Unavailable {
			v.Status, v.FinishedAt = store.ValuationFailed, &done
		} else {
			// Exponential backoff: 2s, 4s, 8s … capped at 5 minutes.
			v.Status = store.ValuationQueued
			v.NextAttemptAt = done.Add(time.Duration(math.Min(300, math.Pow(2, float64(v.Attempts)))) * time.Second)
		}
	} else {
		v.Status, v.Score, v.Components, v.Rationale, v.Error, v.FinishedAt = store.ValuationSucceeded, &score, comps, why, "", &done
	}
	v.LeaseUntil = nil
	return true, w.finish(ctx, v, done)
}

// finish stores a run's outcome and its audit event, retrying with backoff
// while storage fails, for as long as the run's lease lasts: a worker that
// gave up at the first error left the run "running" until the lease lapsed,
// though it was alive and storage was back within seconds. Past the lease
// another worker may own the run, and FinishValuation refuses this one.
func (w *ValuationWorker) finish(ctx context.Context, v store.Valuation, done time.Time) error {
	audit := store.NewAuditEvent(store.Tenancy{TenantID: v.TenantID, Environment: v.Environment},
		store.Actor{Kind: store.ActorSystem, ID: w.ID}, store.SurfaceWorker, telemetry.TraceID(ctx), "valuation."+string(v.Status), done).
		On("valuation", v.ID).WithData(map[string]any{"attempts": v.Attempts, "requestId": v.RequestID})
	// Recorded even when shutting down: the run is done.
	ctx = context.WithoutCancel(ctx)
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := w.Store.InTx(ctx, func(q store.Queries) error {
			if err := q.FinishValuation(ctx, v); err != nil {
				return err // ErrConflict: our lease lapsed and another worker owns the run now
			}
			if v.Status == store.ValuationQueued {
				return nil
			}
			return q.InsertAudit(ctx, audit)
		})
		if errors.Is(err, store.ErrConflict) {
			return struct{}{}, backoff.Permanent(err)
		}
		if err != nil {
			w.Log("warn", "valuation: recording the outcome failed; retrying", map[string]any{"valuation": v.ID, "error": err.Error()})
		}
		return struct{}{}, err
	}, backoff.WithBackOff(retryBackOff()), backoff.WithMaxElapsedTime(w.Lease))
	return err
}
