package storetest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

func testCLISessions(t *testing.T, f *fixture) {
	code := auth.RandomString(8)
	s := store.CLISession{ID: store.NewID("cls"), DeviceHash: []byte("hash-" + code), UserCode: code, ClientName: "veref 1.0",
		Hostname: "laptop", Status: store.CLISessionPending, CreatedAt: t0, ExpiresAt: at(600e9), Interval: 2, Scopes: []auth.Scope{}, Version: 1}
	require.NoError(t, f.s.InsertCLISession(f.ctx, s))
	dup := s
	dup.ID, dup.DeviceHash = store.NewID("cls"), []byte("other-"+code)
	assert.ErrorIs(t, f.s.InsertCLISession(f.ctx, dup), store.ErrConflict, "user codes are unique")

	got, err := f.s.CLISessionByDeviceHash(f.ctx, s.DeviceHash)
	require.NoError(t, err)
	assert.Equal(t, s, got)
	got, err = f.s.CLISessionByUserCode(f.ctx, code)
	require.NoError(t, err)
	assert.Equal(t, s.ID, got.ID)
	_, err = f.s.CLISessionByUserCode(f.ctx, "NOPENOPE")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.s.CLISessionByDeviceHash(f.ctx, []byte("nope"))
	assert.ErrorIs(t, err, store.ErrNotFound)

	approved := got
	approved.Status, approved.TenantID, approved.RecruiterID = store.CLISessionApproved, f.aLive.TenantID, f.recruiter
	approved.Environment, approved.Scopes, approved.DecidedAt = auth.Live, []auth.Scope{auth.CandidatesRead}, ptr(at(60e9))
	approved.LastPolledAt = ptr(at(30e9))
	saved, err := f.s.UpdateCLISession(f.ctx, approved)
	require.NoError(t, err)
	assert.Equal(t, 2, saved.Version)
	_, err = f.s.UpdateCLISession(f.ctx, approved)
	assert.True(t, errors.Is(err, store.ErrConflict), "a stale version is refused: a session is decided once")

	got, err = f.s.CLISessionByDeviceHash(f.ctx, s.DeviceHash)
	require.NoError(t, err)
	assert.Equal(t, saved, got)
}
