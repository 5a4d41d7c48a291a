package workers

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/mail"
	"github.com/verefwork/veref/store"
)

const (
	sendTimeout     = 30 * time.Second
	maxSendAttempts = 8
)

// farFuture parks a message that will not be retried.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// OutboxWorker delivers queued e-mails. Messages of the test environment go
// to Test (a LogMailer), never to Live, whatever is configured.
type OutboxWorker struct {
	Store store.Store
	Live  mail.Mailer
	Test  mail.Mailer
	Now   func() time.Time
	Poll  time.Duration
	Log   Logf
}

// Run works until ctx ends.
func (w *OutboxWorker) Run(ctx context.Context) {
	w.defaults()
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil && w.Log != nil {
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
	if w.Test == nil {
		w.Test = mail.LogMailer{Log: w.Log}
	}
}

// RunOnce sends up to 10 due messages and returns how many it tried.
func (w *OutboxWorker) RunOnce(ctx context.Context) (int, error) {
	w.defaults()
	now := w.Now().UTC()
	// The lease must outlast the whole batch, or another instance could
	// claim and send a message this one is still sending.
	const batch = 10
	msgs, err := w.Store.ClaimOutbox(ctx, now, now.Add(batch*sendTimeout+time.Minute), batch)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		mailer := w.Test
		if m.Environment == auth.Live && w.Live != nil {
			mailer = w.Live
		}
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		sendErr := mailer.Send(sctx, mail.Message{ID: m.ID, To: m.To, Subject: m.Subject, Body: m.Body})
		cancel()
		at := w.Now().UTC()
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
				if w.Log != nil {
					w.Log("warn", "e-mail abandoned", map[string]any{"message": m.ID, "attempts": m.Attempts + 1, "error": lastErr})
				}
			}
		}
		// Recorded even when shutting down: a sent message left leased
		// would be sent again.
		if err := w.Store.MarkOutbox(context.WithoutCancel(ctx), m.ID, sent, m.Attempts+1, lastErr, next); err != nil {
			return len(msgs), err
		}
	}
	return len(msgs), nil
}
