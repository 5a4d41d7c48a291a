package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/retention"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/storetest"
)

var day = 24 * time.Hour

// seed writes rows of every kind at the given ages before now.
func seed(t *testing.T, st store.Store, now time.Time) {
	ctx := context.Background()
	ten := store.Tenancy{TenantID: "ten_1", Environment: auth.Live}
	require.NoError(t, st.CreateTenant(ctx, store.Tenant{ID: "ten_1", Name: "T", CreatedAt: now}))
	require.NoError(t, st.CreateRecruiter(ctx, store.Recruiter{ID: "rec_1", TenantID: "ten_1", Email: "r@t.test", CreatedAt: now}))
	var usage []store.Usage
	for _, age := range []time.Duration{200 * day, 91 * day, 10 * day, time.Hour} {
		usage = append(usage, store.Usage{ID: store.NewIDAt("use", now.Add(-age)), KeyID: "key_1", TenantID: "ten_1", Environment: auth.Live,
			Surface: "rest", Endpoint: "GET /x", Method: "GET", Status: 200, IPHash: "h", TraceID: "t", At: now.Add(-age)})
	}
	require.NoError(t, st.InsertUsage(ctx, usage))
	for i, age := range []time.Duration{3 * day, 25 * time.Hour, time.Hour} {
		require.NoError(t, st.InsertIdempotency(ctx, ten, store.IdempotencyRecord{KeyID: "key_1", Key: string(rune('a' + i)),
			Operation: "op", RequestHash: "h", Status: 201, CreatedAt: now.Add(-age)}))
	}
	for i, age := range []time.Duration{31 * day, 29 * day} {
		_, err := st.SaveConversation(ctx, ten, store.Conversation{ID: "conv_" + string(rune('a'+i)), RecruiterID: "rec_1",
			KeyID: "key_1", Messages: []byte("[]"), CreatedAt: now.Add(-age), UpdatedAt: now.Add(-age)})
		require.NoError(t, err)
	}
	for _, age := range []time.Duration{400 * day, day} {
		require.NoError(t, st.InsertAudit(ctx, store.AuditEvent{ID: store.NewIDAt("evt", now.Add(-age)), TenantID: "ten_1", Environment: auth.Live,
			ActorKind: store.ActorSystem, ActorID: "x", Surface: "rest", Action: "a", Outcome: "ok", At: now.Add(-age)}))
	}
	for _, age := range []time.Duration{30 * day, 0} {
		require.NoError(t, st.AddAgentTokens(ctx, "key_1", now.Add(-age).Format(time.DateOnly), 10))
	}
	for i, age := range []time.Duration{2 * day, -time.Hour} { // one long expired, one still open
		code := auth.RandomString(8)
		require.NoError(t, st.InsertCLISession(ctx, store.CLISession{ID: "cls_" + string(rune('a'+i)), DeviceHash: []byte(code),
			UserCode: code, ClientName: "veref", Hostname: "h", Status: store.CLISessionPending, CreatedAt: now.Add(-age - time.Hour),
			ExpiresAt: now.Add(-age), Interval: 2, Scopes: []auth.Scope{}, Version: 1}))
	}
}

func TestSweepDeletesByAgeInBatches(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			seed(t, st, now)
			clock := now
			s := &retention.Sweeper{Store: st, Now: func() time.Time { return clock }, Batch: 1}

			deleted, ran, err := s.Sweep(context.Background())
			require.NoError(t, err)
			assert.True(t, ran)
			assert.Equal(t, map[store.PurgeKind]int{store.PurgeUsage: 2, store.PurgeIdempotency: 2, store.PurgeConversations: 1,
				store.PurgeAgentSpend: 1, store.PurgeCLISessions: 1}, deleted, "audit events are kept without VEREF_RETENTION_AUDIT")

			// Nothing more at the same time; 81 days later the 10-day-old usage row goes too.
			deleted, _, err = s.Sweep(context.Background())
			require.NoError(t, err)
			assert.Zero(t, deleted[store.PurgeUsage])
			clock = now.Add(81 * day)
			deleted, _, err = s.Sweep(context.Background())
			require.NoError(t, err)
			assert.Equal(t, 1, deleted[store.PurgeUsage])
			rows, _, err := st.ListUsage(context.Background(), "ten_1", "key_1", store.Page{})
			require.NoError(t, err)
			assert.Len(t, rows, 1, "the hour-old row (now 81 days old) stays")

			// With an audit age, old audit events go.
			s.Audit = 365 * day
			deleted, _, err = s.Sweep(context.Background())
			require.NoError(t, err)
			assert.Equal(t, 1, deleted[store.PurgeAudit])
			events, _, err := st.ListAudit(context.Background(), store.Tenancy{TenantID: "ten_1", Environment: auth.Live},
				store.AuditFilter{}, store.Page{})
			require.NoError(t, err)
			assert.Len(t, events, 1)
		})
	}
}

// On PostgreSQL one instance sweeps at a time: while one holds the lock,
// another's sweep does nothing and says so.
func TestOneSweeperAtATimeOnPostgres(t *testing.T) {
	url := storetest.PostgresURL(t)
	ctx := context.Background()
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		require.NoError(t, s.Migrate(ctx))
		return s
	}
	a, b := open(), open()
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan bool)
	go func() {
		ran, err := a.Exclusive(ctx, "retention", func(context.Context) error {
			close(holding)
			<-release
			return nil
		})
		assert.NoError(t, err)
		done <- ran
	}()
	<-holding
	_, ran, err := (&retention.Sweeper{Store: b}).Sweep(ctx)
	require.NoError(t, err)
	assert.False(t, ran, "another instance holds the sweep")
	close(release)
	assert.True(t, <-done)
	_, ran, err = (&retention.Sweeper{Store: b}).Sweep(ctx)
	require.NoError(t, err)
	assert.True(t, ran, "the lock is free again")
}
