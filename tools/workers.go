package tools

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/smtp"
	"strings"
	"sync"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
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
	var comps map[string]any
	var why string
	if err == nil {
		score, comps, why, err = valuate(r)
	}
	done := w.Now().UTC()
	if err != nil {
		// Callers read v.Error: keep internals (hosts, SQL) in the log only.
		w.Log("warn", "valuation attempt failed", map[string]any{"valuation": v.ID, "attempt": v.Attempts, "error": err.Error()})
		te := AsError(err)
		v.Error = te.Message
		// Only a storage hiccup is worth another attempt; anything else
		// would fail the same way every time.
		if v.Attempts >= w.MaxAttempts || te.Code != CodeUnavailable {
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
	return true, w.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.FinishValuation(ctx, v); err != nil {
			return err // ErrConflict: our lease lapsed and another worker owns the run now
		}
		if v.Status == store.ValuationQueued {
			return nil
		}
		return q.InsertAudit(ctx, store.AuditEvent{ID: store.NewID("evt"), TenantID: v.TenantID, Environment: v.Environment,
			ActorKind: store.ActorSystem, ActorID: w.ID, Surface: "worker", Action: "valuation." + v.Status,
			TargetType: "valuation", TargetID: v.ID, Outcome: "ok", At: done,
			Data: map[string]any{"attempts": v.Attempts, "requestId": v.RequestID}})
	})
}

// Mailer sends one e-mail.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// LogMailer writes e-mails to the log instead of sending them: the default,
// and always what the test environment uses.
type LogMailer struct{ Log Logf }

// Send logs the message without its body, which holds the single-use link.
func (m LogMailer) Send(_ context.Context, to, subject, _ string) error {
	if m.Log != nil {
		m.Log("info", "e-mail not sent (log mailer)", map[string]any{"to": to, "subject": subject})
	}
	return nil
}

// SMTPMailer sends through an SMTP relay. Every step is bounded by Timeout
// (default 30 seconds), so a relay that stalls cannot hold the outbox worker,
// and with it a graceful shutdown, forever.
type SMTPMailer struct {
	Addr    string // host:port
	From    string
	Auth    smtp.Auth
	Timeout time.Duration
}

// Send delivers one plain-text message, upgrading to TLS when the relay offers it.
func (m SMTPMailer) Send(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(to+subject+m.From, "\r\n") {
		return fmt.Errorf("refusing header injection")
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(m.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if m.Auth != nil {
		if err := c.Auth(m.Auth); err != nil {
			return err
		}
	}
	if err := c.Mail(m.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n")
	if _, err := wc.Write([]byte(msg)); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}

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
	Live  Mailer
	Test  Mailer
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
		w.Test = LogMailer{Log: w.Log}
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
		sendErr := mailer.Send(sctx, m.To, m.Subject, m.Body)
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
