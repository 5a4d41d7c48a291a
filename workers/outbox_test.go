package workers_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/mail"
	"github.com/verefwork/veref/mail/mailtest"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/workers"
)

// queue writes a live invitation e-mail due now and returns its id.
func queue(t *testing.T, st store.Store, to string) string {
	t.Helper()
	now := time.Now().UTC()
	m := store.OutboxMessage{ID: store.NewID("msg"), TenantID: "acme", Environment: auth.Live, To: to,
		Subject: "Reference request for Dana", Body: "Hello", CreatedAt: now, NextAttemptAt: now}
	require.NoError(t, st.InsertOutbox(context.Background(), store.Tenancy{TenantID: "acme", Environment: auth.Live}, m))
	return m.ID
}

func smtpTo(relay *mailtest.Relay) mail.Mailer {
	return mail.SMTPMailer{Addr: relay.Addr, From: "refs@veref.test"}
}

// at is a clock shifted by d.
func at(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }

// messageIDs counts the messages the relay got per Message-ID.
func messageIDs(relay *mailtest.Relay) map[string]int {
	n := map[string]int{}
	for _, m := range relay.Messages() {
		n[m.Header("Message-ID")]++
	}
	return n
}

// A message the relay accepted just as storage went away is recorded once
// storage is back, by the same worker, and never sent again. (It was sent
// again when its lease lapsed.)
func TestOutboxRecordsADeliveryOnceStorageIsBack(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st, outage, _ := b.open(t)
			id := queue(t, st, "walter@example.com")
			relay := mailtest.NewRelay(t, mailtest.OnMessage(func(mailtest.Received) { outage.Start() }))
			var back sync.Once
			w := &workers.OutboxWorker{Store: st, Live: smtpTo(relay), Log: func(_, msg string, _ map[string]any) {
				if strings.HasPrefix(msg, "outbox: recording") {
					back.Do(outage.End) // storage returns after the first failed record
				}
			}}
			n, err := w.RunOnce(context.Background())
			require.NoError(t, err, "the record waits out the outage instead of failing")
			assert.Equal(t, 1, n)

			later := &workers.OutboxWorker{Store: st, Live: smtpTo(relay), Now: at(time.Hour)}
			n, err = later.RunOnce(context.Background())
			require.NoError(t, err)
			assert.Zero(t, n, "recorded as sent: nothing due, even long after any lease")
			assert.Equal(t, map[string]int{"<" + id + "@veref.test>": 1}, messageIDs(relay), "sent once")
		})
	}
}

// A worker that loses its database for good while sending holds nothing
// but that one message, and only for its short lease: another instance
// sends the rest at once and the lost one soon after. The copy of the lost
// one carries the same Message-ID. (The worker used to claim ten messages
// at once with a 6-minute lease, so all of them waited the 6 minutes.)
func TestOutboxWorkerThatLostItsDatabaseHoldsOneMessageBriefly(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			_, _, other := b.open(t)
			shared := other()
			lost := other() // the database handle of the worker about to lose it
			var ids []string
			for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
				ids = append(ids, queue(t, shared, to))
			}

			var first atomic.Bool
			var rescued int
			var rescueErr error
			var relay *mailtest.Relay
			relay = mailtest.NewRelay(t, mailtest.OnMessage(func(mailtest.Received) {
				if !first.CompareAndSwap(false, true) {
					return
				}
				// The relay has the first message; its sender's database is gone.
				_ = lost.Close()
				// Another instance, a little over a minute later, by which
				// time the 30-second lease of the lost worker has lapsed.
				rescuer := &workers.OutboxWorker{Store: shared, Live: smtpTo(relay), Now: at(90 * time.Second)}
				rescued, rescueErr = rescuer.RunOnce(context.Background())
			}))
			w := &workers.OutboxWorker{Store: lost, Live: smtpTo(relay), RecordFor: time.Millisecond}
			_, err := w.RunOnce(context.Background())
			require.Error(t, err, "its database is closed: the first message cannot be recorded")

			require.NoError(t, rescueErr)
			assert.Equal(t, 3, rescued, "the other instance sent all three, the lost worker's one included")
			want := map[string]int{}
			for _, id := range ids {
				want["<"+id+"@veref.test>"] = 1
			}
			want["<"+ids[0]+"@veref.test>"] = 2 // at least once: the copy is recognisable
			assert.Equal(t, want, messageIDs(relay))

			n, err := (&workers.OutboxWorker{Store: shared, Live: smtpTo(relay), Now: at(time.Hour)}).RunOnce(context.Background())
			require.NoError(t, err)
			assert.Zero(t, n, "every message recorded as sent")
		})
	}
}

// Attempts count real send tries: a relay that refuses costs one attempt
// each time, and the message is due again after its backoff, not held.
func TestOutboxCountsFailedSendsAsAttempts(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st, _, _ := b.open(t)
			id := queue(t, st, "walter@example.com")
			down := mailtest.NewRelay(t, mailtest.Stalled())
			w := &workers.OutboxWorker{Store: st, Live: mail.SMTPMailer{Addr: down.Addr, From: "refs@veref.test", Timeout: 100 * time.Millisecond}}
			for attempt := 1; attempt <= 2; attempt++ {
				w.Now = at(time.Duration(attempt-1) * time.Hour)
				n, err := w.RunOnce(context.Background())
				require.NoError(t, err)
				assert.Equal(t, 1, n)
				got, err := st.ClaimOutbox(context.Background(), time.Now().Add(time.Duration(attempt)*time.Hour), time.Now().Add(48*time.Hour), 1)
				require.NoError(t, err)
				require.Len(t, got, 1)
				assert.Equal(t, id, got[0].ID)
				assert.Equal(t, attempt, got[0].Attempts)
				assert.NotEmpty(t, got[0].LastError)
				require.NoError(t, st.LeaseOutbox(context.Background(), id, got[0].NextAttemptAt, time.Now()), "hand it back")
			}
		})
	}
}

// leaseSpy is a real store that reports each lease it renews.
type leaseSpy struct {
	store.Store
	renewed chan time.Time
}

func (s leaseSpy) LeaseOutbox(ctx context.Context, id string, held, until time.Time) error {
	err := s.Store.LeaseOutbox(ctx, id, held, until)
	if err == nil {
		select {
		case s.renewed <- until:
		default:
		}
	}
	return err
}

// A worker renews its claim while the relay is slow, so the short lease
// does not hand a message being sent to another instance.
func TestOutboxRenewsTheLeaseWhileSending(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			_, _, other := b.open(t)
			st := other()
			id := queue(t, st, "walter@example.com")
			var offset atomic.Int64 // the test's clock, moved by hand
			clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			spy := leaseSpy{st, make(chan time.Time, 1)}
			const lease = 3 * time.Second // renewed every second
			var relay *mailtest.Relay
			var rivalClaimed int
			relay = mailtest.NewRelay(t, mailtest.OnMessage(func(mailtest.Received) {
				// The relay takes ten seconds (of the test's clock) to answer,
				// well past the lease taken at the claim.
				offset.Add(int64(10 * time.Second))
				moved := clock()
				for renewed := false; !renewed; {
					select {
					case until := <-spy.renewed:
						renewed = until.After(moved)
					case <-time.After(time.Minute):
						t.Error("the lease was not renewed while sending")
						return
					}
				}
				rival := &workers.OutboxWorker{Store: st, Live: smtpTo(relay), Now: clock}
				var err error
				rivalClaimed, err = rival.RunOnce(context.Background())
				assert.NoError(t, err)
			}))
			w := &workers.OutboxWorker{Store: spy, Live: smtpTo(relay), Now: clock, Lease: lease}
			n, err := w.RunOnce(context.Background())
			require.NoError(t, err)
			assert.Equal(t, 1, n)
			assert.Zero(t, rivalClaimed, "the message being sent stays with its sender")
			assert.Equal(t, map[string]int{"<" + id + "@veref.test>": 1}, messageIDs(relay))
		})
	}
}
