package tools

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/store"
)

// Audit rows outside a transaction (refusals, approvals) are retried,
// briefly, before anything is given up: the call waits for its row, and a
// storage stall is already bounded per attempt by VEREF_DB_TIMEOUT.
const (
	auditTries      = 4
	auditFirstPause = 50 * time.Millisecond
	auditMaxPause   = 500 * time.Millisecond
	auditMaxElapsed = 2 * time.Second
)

// SetLog sets where failed audit writes are reported (the default is
// standard error: such a failure is never silent).
func (r *Registry) SetLog(l zerolog.Logger) { r.log = l }

func defaultLog() zerolog.Logger { return zerolog.New(os.Stderr).With().Timestamp().Logger() }

// writeAudit inserts ev outside any transaction, retrying with backoff and
// jitter. After a failure it writes ev.Storable(), so an event a backend
// refuses as it is (text PostgreSQL cannot hold) is still kept, whole. A
// conflict on a retry means an earlier attempt committed. An event still
// unwritten is logged at error level and its error returned.
func (r *Registry) writeAudit(ctx context.Context, ev store.AuditEvent) error {
	ctx = context.WithoutCancel(ctx) // a caller that left does not cancel its trail
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = auditFirstPause, auditMaxPause
	tries := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		tries++
		row := ev
		if tries > 1 {
			row = ev.Storable()
		}
		err := r.store.InsertAudit(ctx, row)
		if tries > 1 && errors.Is(err, store.ErrConflict) {
			return struct{}{}, nil
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(auditTries), backoff.WithMaxElapsedTime(auditMaxElapsed))
	switch {
	case err != nil:
		metrics.AuditWriteFailures.WithLabelValues("failed").Inc()
		r.auditLog(r.log.Error(), ev).Err(err).Int("attempts", tries).Msg("audit event not written")
	case tries > 1:
		metrics.AuditWriteFailures.WithLabelValues("retried").Inc()
		r.auditLog(r.log.Warn(), ev).Int("attempts", tries).Msg("audit event written after a retry")
	}
	return err
}

// keepAudit is writeAudit for refusals, which nothing waits on: an event
// storage still refuses goes to the batched writer, which keeps it until
// storage takes it, rather than being lost.
func (r *Registry) keepAudit(ctx context.Context, ev store.AuditEvent) error {
	err := r.writeAudit(ctx, ev)
	if err == nil || r.reads == nil {
		return err
	}
	r.reads.Record(ev.Storable())
	r.auditLog(r.log.Error(), ev).Msg("audit event queued for a later write")
	return nil
}

// auditLog names an event in a log line by what finds it again, never by
// its data (which may hold personal data).
func (r *Registry) auditLog(e *zerolog.Event, ev store.AuditEvent) *zerolog.Event {
	return e.Str("event_id", ev.ID).Str("tenant_id", ev.TenantID).Str("key_id", ev.ActorID).
		Str("action", ev.Action).Str("outcome", string(ev.Outcome)).Str("trace_id", ev.TraceID)
}
