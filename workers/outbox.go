package workers

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/mail"
	"github.com/verefwork/veref/store"
)

const (
	sendTimeout     = 30 * time.Second
	maxSendAttempts = 8
	outboxBatch     = 10
)

// farFuture parks a message that will not be retried.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// OutboxWorker delivers queued e-mails. Messages of the test environment go
// to Test (a LogMailer), never to Live, whatever is configured.
//
// Delivery is at least once. A worker claims one message at a time with a
// short lease (Lease, default 30 seconds), renews it while the relay is
// talking, and records the outcome, retrying that write with backoff when
// storage fails, so a short outage delays the record instead of losing it.
// The one window left is a crash (or an outage longer than RecordFor)
// between the relay accepting a message and its record: the lease lapses
// and the message is sent again, with the same Message-ID, which receivers
// use to drop the copy.
type OutboxWorker struct {
	Store store.Store
	Live  mail.Mailer
	Test  mail.Mailer
	Now   func() time.Time
	Poll  time.Duration
	// Lease is how long a claim outlives a worker that stopped renewing it
	// (one that crashed or lost its database). Default 30 seconds.
	Lease time.Duration
	// RecordFor bounds the retries of an attempt's record. Default 1 minute.
	RecordFor time.Duration
	Log       Logf
}

// Run works until ctx ends.
func (w *OutboxWorker) Run(ctx context.Context) {
	w.defaults()
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil {
			w.Log("warn", "outbox worker", map[string]any{"error": err.Error()})
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(w.Poll):
			}
		}
	}
}

var outboxDefaults sync.Mutex

// defaults fills unset fields once; RunOnce may be called from several
// goroutines.
func (w *OutboxWorker) defaults() {
	outboxDefaults.Lock()
	defer outboxDefaults.Unlock()
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Poll <= 0 {
		w.Poll = time.Second
	}
	if w.Lease <= 0 {
		w.Lease = 30 * time.Second
	}
	if w.RecordFor <= 0 {
		w.RecordFor = time.Minute
	}
	if w.Log == nil {
		w.Log = func(string, string, map[string]any) {}
	}
	if w.Test == nil {
		w.Test = mail.LogMailer{Log: w.Log}
	}
}

// RunOnce sends up to 10 due messages and returns how many it tried. It
// claims them one at a time, so a worker never holds mail it is not
// sending: the rest stay free for other instances.
func (w *OutboxWorker) RunOnce(ctx context.Context) (int, error) {
	w.defaults()
	for n := range outboxBatch {
		if ctx.Err() != nil {
			return n, nil
		}
		now := w.now()
		msgs, err := w.Store.ClaimOutbox(ctx, now, now.Add(w.Lease), 1)
		if err != nil || len(msgs) == 0 {
			return n, err
		}
		if err := w.deliver(ctx, msgs[0]); err != nil {
			return n + 1, err
		}
	}
	return outboxBatch, nil
}

// now is the worker's clock to the microsecond, as the store keeps leases.
func (w *OutboxWorker) now() time.Time { return w.Now().UTC().Truncate(time.Microsecond) }

// deliver sends one claimed message and records the attempt.
func (w *OutboxWorker) deliver(ctx context.Context, m store.OutboxMessage) error {
	if ctx.Err() != nil {
		// Shutting down before the send: hand the message back untried.
		return w.Store.LeaseOutbox(context.WithoutCancel(ctx), m.ID, m.NextAttemptAt, w.now())
	}
	mailer := w.Test
	if m.Environment == auth.Live && w.Live != nil {
		mailer = w.Live
	}
	lease := w.keepLeased(ctx, m.ID, m.NextAttemptAt)
	sctx, cancel := context.WithTimeout(ctx, sendTimeout)
	sendErr := mailer.Send(sctx, mail.Message{ID: m.ID, To: m.To, Subject: m.Subject, Body: m.Body})
	cancel()
	held := lease.stop()

	at := w.now()
	var sent *time.Time
	lastErr := ""
	next := at.Add(time.Duration(math.Min(3600, 30*math.Pow(2, float64(m.Attempts)))) * time.Second)
	if sendErr == nil {
		sent = &at
	} else {
		lastErr = sendErr.Error()
		if m.Attempts+1 >= maxSendAttempts {
			// Give up: a bad address would otherwise be retried forever.
			next = farFuture
			w.Log("warn", "e-mail abandoned", map[string]any{"message": m.ID, "attempts": m.Attempts + 1, "error": lastErr})
		}
	}
	return w.record(ctx, m.ID, held, sent, lastErr, next)
}

// record stores an attempt's outcome, retrying with backoff while storage
// fails: a delivered message left unrecorded would be sent again. It goes on
// during shutdown for the same reason, bounded by RecordFor.
func (w *OutboxWorker) record(ctx context.Context, id string, held time.Time, sent *time.Time, lastErr string, next time.Time) error {
	ctx = context.WithoutCancel(ctx)
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := w.Store.MarkOutbox(ctx, id, held, sent, lastErr, next)
		if errors.Is(err, store.ErrConflict) {
			// The claim lapsed and another worker has the message: its
			// attempt is the one to record.
			return struct{}{}, backoff.Permanent(err)
		}
		if err != nil {
			w.Log("warn", "outbox: recording an attempt failed; retrying", map[string]any{"message": id, "sent": sent != nil, "error": err.Error()})
		}
		return struct{}{}, err
	}, backoff.WithBackOff(retryBackOff()), backoff.WithMaxElapsedTime(w.RecordFor))
	return err
}

// retryBackOff retries a storage write soon after storage is back: from
// 100ms, doubling, at most 2s apart.
func retryBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 2*time.Second
	return b
}

// leaseKeeper renews a claim every third of the lease until stopped.
type leaseKeeper struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	held time.Time
}

func (w *OutboxWorker) keepLeased(ctx context.Context, id string, held time.Time) *leaseKeeper {
	k := &leaseKeeper{done: make(chan struct{}), held: held}
	k.wg.Go(func() {
		tick := time.NewTicker(w.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-k.done:
				return
			case <-tick.C:
			}
			until := w.now().Add(w.Lease)
			k.mu.Lock()
			err := w.Store.LeaseOutbox(context.WithoutCancel(ctx), id, k.held, until)
			if err == nil {
				k.held = until
			}
			k.mu.Unlock()
			switch {
			case errors.Is(err, store.ErrConflict):
				return // lapsed and taken over: nothing left to renew
			case err != nil:
				// The next tick tries again; if storage stays away the
				// lease lapses and another worker may send a copy.
				w.Log("warn", "outbox: renewing a lease failed", map[string]any{"message": id, "error": err.Error()})
			}
		}
	})
	return k
}

// stop ends the renewals and returns the lease now held.
func (k *leaseKeeper) stop() time.Time {
	close(k.done)
	k.wg.Wait()
	return k.held
}
