package storetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

func testKeyLimits(t *testing.T, f *fixture) {
	ctx, s, a := f.ctx, f.s, f.aLive.TenantID
	k := newKey(f, a, "limited")
	tokens := int64(5000)
	k.KeyLimits = store.KeyLimits{RateLimit: &auth.RateLimit{Requests: 10, Per: "second"},
		AllowedIPs: []string{"203.0.113.0/24", "2001:db8::/32"}, AgentDailyTokens: &tokens}
	require.NoError(t, s.InsertAPIKey(ctx, k))
	got, err := s.GetAPIKey(ctx, a, k.ID)
	require.NoError(t, err)
	assert.Equal(t, k, got)
	rec, err := s.KeyByPrefix(ctx, k.Prefix)
	require.NoError(t, err)
	assert.Equal(t, k.RateLimit, rec.RateLimit)
	assert.Equal(t, k.AllowedIPs, rec.AllowedIPs)
	assert.Equal(t, &tokens, rec.AgentDailyTokens)

	// Replacing the limits leaves everything else as it was.
	updated, err := s.SetAPIKeyLimits(ctx, a, k.ID, store.KeyLimits{RateLimit: &auth.RateLimit{Requests: 5, Per: "hour"}})
	require.NoError(t, err)
	want := k
	want.KeyLimits = store.KeyLimits{RateLimit: &auth.RateLimit{Requests: 5, Per: "hour"}}
	assert.Equal(t, want, updated)

	_, err = s.SetAPIKeyLimits(ctx, f.bLive.TenantID, k.ID, store.KeyLimits{})
	assert.ErrorIs(t, err, store.ErrNotFound, "another tenant's key")
	got, err = s.GetAPIKey(ctx, a, k.ID)
	require.NoError(t, err)
	assert.Equal(t, want, got, "a refused update changes nothing")
}

func testAgentSpend(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	n, err := s.AgentTokens(ctx, "key_1", "2026-01-02")
	require.NoError(t, err)
	assert.Zero(t, n)
	require.NoError(t, s.AddAgentTokens(ctx, "key_1", "2026-01-02", 100))
	require.NoError(t, s.AddAgentTokens(ctx, "key_1", "2026-01-02", 23))
	require.NoError(t, s.AddAgentTokens(ctx, "key_1", "2026-01-03", 7))
	require.NoError(t, s.AddAgentTokens(ctx, "key_2", "2026-01-02", 1))
	n, err = s.AgentTokens(ctx, "key_1", "2026-01-02")
	require.NoError(t, err)
	assert.Equal(t, int64(123), n)
	n, err = s.AgentTokens(ctx, "key_1", "2026-01-03")
	require.NoError(t, err)
	assert.Equal(t, int64(7), n)
}

func testPurge(t *testing.T, f *fixture) {
	ctx, s, a := f.ctx, f.s, f.aLive.TenantID
	var rows []store.Usage
	for i := range 7 {
		rows = append(rows, store.Usage{ID: store.NewIDAt("use", at(time.Duration(i)*time.Hour)), KeyID: "key_1", TenantID: a, Environment: auth.Live, Surface: "rest",
			Endpoint: "GET /x", Method: "GET", Status: 200, IPHash: "h", TraceID: "t", At: at(time.Duration(i) * time.Hour)})
	}
	// A row whose id does not carry its at (another writer's id) is kept
	// while its at is young, though its id sorts among the old.
	young := rows[6]
	young.ID, young.At = store.NewIDAt("use", at(0)), at(6*time.Hour)
	rows = append(rows, young)
	require.NoError(t, s.InsertUsage(ctx, rows))
	// Rows at 0h..4h are older than 4h30m: five, in batches of two.
	cut := at(4*time.Hour + 30*time.Minute)
	var batches []int
	for {
		n, err := s.Purge(ctx, store.PurgeUsage, cut, 2)
		require.NoError(t, err)
		batches = append(batches, n)
		if n < 2 {
			break
		}
	}
	assert.Equal(t, []int{2, 2, 1}, batches)
	left, _, err := s.ListUsage(ctx, a, "key_1", store.Page{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{rows[5].ID, rows[6].ID, young.ID}, ids(left, func(u store.Usage) string { return u.ID }))

	for i, d := range []time.Duration{0, 48 * time.Hour} {
		require.NoError(t, s.InsertIdempotency(ctx, f.aLive, store.IdempotencyRecord{KeyID: "key_1", Key: string(rune('a' + i)),
			Operation: "op", RequestHash: "h", Status: 201, CreatedAt: at(d)}))
		_, err := s.SaveConversation(ctx, f.aLive, store.Conversation{ID: "conv_" + string(rune('a'+i)), RecruiterID: f.recruiter,
			KeyID: "key_1", Messages: []byte("[]"), CreatedAt: at(d), UpdatedAt: at(d)})
		require.NoError(t, err)
		require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{ID: store.NewIDAt("evt", at(d)), TenantID: a, Environment: auth.Live,
			ActorKind: store.ActorSystem, ActorID: "x", Surface: "rest", Action: "a", Outcome: "ok", At: at(d)}))
	}
	for i, d := range []time.Duration{0, 48 * time.Hour} {
		code := auth.RandomString(8)
		require.NoError(t, s.InsertCLISession(ctx, store.CLISession{ID: "cls_" + string(rune('a'+i)), DeviceHash: []byte("h-" + code),
			UserCode: code, ClientName: "veref", Hostname: "h", Status: store.CLISessionPending, CreatedAt: at(0), ExpiresAt: at(d),
			Interval: 2, Scopes: []auth.Scope{}, Version: 1}))
	}
	require.NoError(t, s.AddAgentTokens(ctx, "key_1", at(0).Format(time.DateOnly), 5))
	require.NoError(t, s.AddAgentTokens(ctx, "key_1", at(48*time.Hour).Format(time.DateOnly), 5))
	for _, kind := range []store.PurgeKind{store.PurgeIdempotency, store.PurgeConversations, store.PurgeAudit, store.PurgeAgentSpend, store.PurgeCLISessions} {
		n, err := s.Purge(ctx, kind, at(24*time.Hour), 100)
		require.NoError(t, err, kind)
		assert.Equal(t, 1, n, kind)
	}
	_, err = s.GetIdempotency(ctx, f.aLive, "key_1", "a")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetIdempotency(ctx, f.aLive, "key_1", "b")
	assert.NoError(t, err)
	_, err = s.GetConversation(ctx, f.aLive, "conv_a")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetConversation(ctx, f.aLive, "conv_b")
	assert.NoError(t, err)
	spent, err := s.AgentTokens(ctx, "key_1", at(48*time.Hour).Format(time.DateOnly))
	require.NoError(t, err)
	assert.Equal(t, int64(5), spent)

	_, err = s.Purge(ctx, store.PurgeKind("nothing"), cut, 1)
	assert.Error(t, err)
}

func testExclusive(t *testing.T, f *fixture) {
	var runs atomic.Int32
	ran, err := f.s.Exclusive(f.ctx, "storetest", func(ctx context.Context) error {
		runs.Add(1)
		return nil
	})
	require.NoError(t, err)
	assert.True(t, ran)
	assert.Equal(t, int32(1), runs.Load())
}
