package quota_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/store/storetest"
)

// Two instances share a store. Display may reuse a count within ShowFor,
// but this instance's own charges show at once, and enforcement (Status)
// always reads the store.
func TestShownReusesCountsButNotOwnChargesOrEnforcement(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	now := func() time.Time { return time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC) }
	budget := int64(100)
	p := auth.Principal{KeyID: "key_1", AgentDailyTokens: &budget}
	a := &quota.AgentTokens{Store: st, Now: now, ShowFor: time.Hour}
	b := &quota.AgentTokens{Store: st, Now: now, ShowFor: time.Hour}

	require.NoError(t, a.Charge(ctx, "key_1", 30))
	s, err := a.Shown(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, int64(30), s.UsedToday, "a charge of this instance shows at once")

	require.NoError(t, b.Charge(ctx, "key_1", 80))
	s, err = a.Shown(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, int64(30), s.UsedToday, "another instance's charge may wait for ShowFor")

	s, err = a.Status(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, int64(110), s.UsedToday, "enforcement reads the store")
	assert.True(t, s.Exceeded())
	s, err = a.Shown(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, int64(110), s.UsedToday, "and what it read is shown from then on")
	assert.Equal(t, int64(0), s.Remaining)

	fresh := &quota.AgentTokens{Store: st, Now: now}
	s, err = fresh.Shown(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, int64(110), s.UsedToday, "without ShowFor every display reads the store")
	require.NoError(t, b.Charge(ctx, "key_1", 1))
	s, err = fresh.Shown(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, int64(111), s.UsedToday)
}
