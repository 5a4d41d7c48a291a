package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

// t0 has sub-microsecond digits dropped already, so round trips compare equal.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891234000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }
func ptr[T any](v T) *T            { return &v }

// fixture is two tenants; A has a recruiter. Live and test of A and live
// of B are three tenancies that must never see each other's rows.
type fixture struct {
	s                   store.Store
	ctx                 context.Context
	aLive, aTest, bLive store.Tenancy
	recruiter           string
}

func setup(t *testing.T, open func(t *testing.T) store.Store) *fixture {
	t.Helper()
	f := &fixture{s: open(t), ctx: context.Background()}
	a, b := store.NewID("ten"), store.NewID("ten")
	require.NoError(t, f.s.CreateTenant(f.ctx, store.Tenant{ID: a, Name: "Acme", CreatedAt: t0}))
	require.NoError(t, f.s.CreateTenant(f.ctx, store.Tenant{ID: b, Name: "Beta", CreatedAt: t0}))
	f.recruiter = store.NewID("rec")
	require.NoError(t, f.s.CreateRecruiter(f.ctx, store.Recruiter{ID: f.recruiter, TenantID: a, Email: "r@acme.test", CreatedAt: t0}))
	f.aLive = store.Tenancy{TenantID: a, Environment: auth.Live}
	f.aTest = store.Tenancy{TenantID: a, Environment: auth.Test}
	f.bLive = store.Tenancy{TenantID: b, Environment: auth.Live}
	return f
}

// others are the tenancies that must not see rows of f.aLive.
func (f *fixture) others() []store.Tenancy { return []store.Tenancy{f.aTest, f.bLive} }

func (f *fixture) candidate(t *testing.T, ten store.Tenancy, name string) store.Candidate {
	t.Helper()
	c := store.Candidate{ID: store.NewID("cand"), Name: name, Email: name + "@example.test", CreatedAt: t0, UpdatedAt: t0, Version: 1}
	require.NoError(t, f.s.InsertCandidate(f.ctx, ten, c))
	return c
}

func (f *fixture) request(t *testing.T, ten store.Tenancy) store.ReferenceRequest {
	t.Helper()
	c := f.candidate(t, ten, "cand")
	r := store.ReferenceRequest{ID: store.NewID("req"), CandidateID: c.ID, RecruiterID: f.recruiter, Status: store.RequestDraft,
		CreatedAt: t0, UpdatedAt: t0, Version: 1}
	require.NoError(t, f.s.InsertReference(f.ctx, ten, r))
	return r
}

func (f *fixture) queued(t *testing.T, ten store.Tenancy, requestID string, due time.Time) store.Valuation {
	t.Helper()
	v := store.Valuation{ID: store.NewID("val"), TenantID: ten.TenantID, Environment: ten.Environment, RequestID: requestID,
		Status: store.ValuationQueued, NextAttemptAt: due, CreatedAt: t0}
	require.NoError(t, f.s.InsertValuation(f.ctx, ten, v))
	return v
}

// Run checks a backend against the store contract. open must return a
// fresh, migrated store for each call.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Lifecycle", testLifecycle},
		{"Tenants", testTenants},
		{"Recruiters", testRecruiters},
		{"APIKeys", testAPIKeys},
		{"CountActiveAPIKeys", testCountActive},
		{"KeyLimits", testKeyLimits},
		{"AgentSpend", testAgentSpend},
		{"Purge", testPurge},
		{"Exclusive", testExclusive},
		{"Usage", testUsage},
		{"Audit", testAudit},
		{"AuditHostileInput", testAuditHostileInput},
		{"AuditOutcomes", testAuditOutcomes},
		{"Candidates", testCandidates},
		{"CandidateFilters", testCandidateFilters},
		{"References", testReferences},
		{"Reports", testReports},
		{"Valuations", testValuations},
		{"ClaimValuationExclusive", testClaimExclusive},
		{"ClaimValuationLease", testClaimLease},
		{"Outbox", testOutbox},
		{"PublicTokens", testPublicTokens},
		{"Idempotency", testIdempotency},
		{"Conversations", testConversations},
		{"CLISessions", testCLISessions},
		{"Pagination", testPagination},
		{"InTx", testInTx},
		{"ConcurrentWrites", testConcurrentWrites},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, setup(t, open))
		})
	}
}

func testLifecycle(t *testing.T, f *fixture) {
	require.NoError(t, f.s.Ping(f.ctx))
	require.NoError(t, f.s.Migrate(f.ctx), "Migrate must be idempotent")
	_, err := f.s.GetTenant(f.ctx, f.aLive.TenantID)
	require.NoError(t, err, "a second Migrate must keep the data")
}

func testTenants(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	ten := store.Tenant{ID: store.NewID("ten"), Name: "Gamma", ClerkOrgID: "org_1", CreatedAt: at(time.Hour)}
	require.NoError(t, s.CreateTenant(ctx, ten))
	got, err := s.GetTenant(ctx, ten.ID)
	require.NoError(t, err)
	assert.Equal(t, ten, got)
	got, err = s.TenantByClerkOrg(ctx, "org_1")
	require.NoError(t, err)
	assert.Equal(t, ten, got)

	assert.ErrorIs(t, s.CreateTenant(ctx, ten), store.ErrConflict, "same id")
	assert.ErrorIs(t, s.CreateTenant(ctx, store.Tenant{ID: store.NewID("ten"), Name: "x", ClerkOrgID: "org_1", CreatedAt: t0}), store.ErrConflict, "same org")
	_, err = s.GetTenant(ctx, "ten_missing")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.TenantByClerkOrg(ctx, "")
	assert.ErrorIs(t, err, store.ErrNotFound, "tenants without an org must not match an empty org id")
	_, err = s.TenantByClerkOrg(ctx, "org_2")
	assert.ErrorIs(t, err, store.ErrNotFound)

	// Local times come back as the same instant in UTC.
	loc := time.FixedZone("X", 5*3600)
	t2 := store.Tenant{ID: store.NewID("ten"), Name: "Delta", CreatedAt: time.Date(2030, 1, 1, 12, 0, 0, 123456789, loc)}
	require.NoError(t, s.CreateTenant(ctx, t2))
	got, err = s.GetTenant(ctx, t2.ID)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2030, 1, 1, 7, 0, 0, 123456000, time.UTC), got.CreatedAt)
}

func testRecruiters(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	r := store.Recruiter{ID: store.NewID("rec"), TenantID: f.aLive.TenantID, Email: "boss@acme.test", ClerkUserID: "user_1", Admin: true, CreatedAt: at(time.Minute)}
	require.NoError(t, s.CreateRecruiter(ctx, r))
	got, err := s.GetRecruiter(ctx, r.TenantID, r.ID)
	require.NoError(t, err)
	assert.Equal(t, r, got)
	got, err = s.RecruiterByClerkUser(ctx, r.TenantID, "user_1")
	require.NoError(t, err)
	assert.Equal(t, r, got)
	plain, err := s.GetRecruiter(ctx, f.aLive.TenantID, f.recruiter)
	require.NoError(t, err)
	assert.False(t, plain.Admin)

	_, err = s.GetRecruiter(ctx, f.bLive.TenantID, r.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "another tenant's recruiter")
	_, err = s.RecruiterByClerkUser(ctx, f.bLive.TenantID, "user_1")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.RecruiterByClerkUser(ctx, r.TenantID, "")
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, s.CreateRecruiter(ctx, r), store.ErrConflict)
	dup := store.Recruiter{ID: store.NewID("rec"), TenantID: r.TenantID, Email: "x@acme.test", ClerkUserID: "user_1", CreatedAt: t0}
	assert.ErrorIs(t, s.CreateRecruiter(ctx, dup), store.ErrConflict, "clerk user unique per tenant")
	dup.TenantID = f.bLive.TenantID
	assert.NoError(t, s.CreateRecruiter(ctx, dup), "the same clerk user may belong to another tenant")
	orphan := store.Recruiter{ID: store.NewID("rec"), TenantID: "ten_missing", Email: "o@x.test", CreatedAt: t0}
	assert.ErrorIs(t, s.CreateRecruiter(ctx, orphan), store.ErrNotFound, "unknown tenant")
}

func newKey(f *fixture, tenantID, name string) store.APIKey {
	return store.APIKey{ID: store.NewID("key"), TenantID: tenantID, RecruiterID: f.recruiter, Name: name,
		Prefix: auth.RandomString(12), Environment: auth.Live, Hash: []byte{1, 2, 3, 0, 255}, CreatedAt: t0}
}

func testAPIKeys(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	a := f.aLive.TenantID
	full := newKey(f, a, "full")
	full.Environment = auth.Test
	full.Scopes = []auth.Scope{"references:read", "reports:write"}
	full.ExpiresAt, full.LastUsedAt = ptr(at(48*time.Hour)), ptr(at(time.Second))
	bare := newKey(f, a, "bare")
	bare.Scopes = []auth.Scope{}
	for _, k := range []store.APIKey{full, bare} {
		require.NoError(t, s.InsertAPIKey(ctx, k))
		got, err := s.GetAPIKey(ctx, a, k.ID)
		require.NoError(t, err)
		assert.Equal(t, k, got)
	}
	nilScopes := newKey(f, a, "nil scopes")
	require.NoError(t, s.InsertAPIKey(ctx, nilScopes))
	got, err := s.GetAPIKey(ctx, a, nilScopes.ID)
	require.NoError(t, err)
	assert.Empty(t, got.Scopes)

	_, err = s.GetAPIKey(ctx, f.bLive.TenantID, full.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "another tenant's key")

	assert.ErrorIs(t, s.InsertAPIKey(ctx, newKey(f, a, "full")), store.ErrConflict, "name unique per tenant")
	samePrefix := newKey(f, a, "other")
	samePrefix.Prefix = full.Prefix
	assert.ErrorIs(t, s.InsertAPIKey(ctx, samePrefix), store.ErrConflict, "prefix unique")

	rec, err := s.KeyByPrefix(ctx, full.Prefix)
	require.NoError(t, err)
	assert.Equal(t, auth.KeyRecord{ID: full.ID, TenantID: a, RecruiterID: f.recruiter, Name: "full", Prefix: full.Prefix,
		Environment: auth.Test, Hash: full.Hash, Scopes: full.Scopes, ExpiresAt: full.ExpiresAt}, rec)
	_, err = s.KeyByPrefix(ctx, "nosuchprefix")
	assert.ErrorIs(t, err, auth.ErrKeyNotFound)

	// Revocation is once, and only within the tenant.
	_, err = s.RevokeAPIKey(ctx, f.bLive.TenantID, full.ID, "someone", "nope", at(time.Hour))
	assert.ErrorIs(t, err, store.ErrNotFound)
	revoked, err := s.RevokeAPIKey(ctx, a, full.ID, f.recruiter, "leaked", at(time.Hour))
	require.NoError(t, err)
	want := full
	want.RevokedAt, want.RevokedBy, want.RevokeNote = ptr(at(time.Hour)), f.recruiter, "leaked"
	assert.Equal(t, want, revoked)
	_, err = s.RevokeAPIKey(ctx, a, full.ID, f.recruiter, "again", at(2*time.Hour))
	assert.ErrorIs(t, err, store.ErrConflict)
	_, err = s.RevokeAPIKey(ctx, a, "key_missing", f.recruiter, "", at(time.Hour))
	assert.ErrorIs(t, err, store.ErrNotFound)
	rec, err = s.KeyByPrefix(ctx, full.Prefix)
	require.NoError(t, err)
	assert.Equal(t, ptr(at(time.Hour)), rec.RevokedAt)

	// The same name is free in another tenant; lists are per tenant and by recruiter.
	otherRec := store.Recruiter{ID: store.NewID("rec"), TenantID: f.bLive.TenantID, Email: "b@beta.test", CreatedAt: t0}
	require.NoError(t, s.CreateRecruiter(ctx, otherRec))
	bk := newKey(f, f.bLive.TenantID, "full")
	bk.RecruiterID = otherRec.ID
	require.NoError(t, s.InsertAPIKey(ctx, bk))
	mine := newKey(f, a, "mine")
	second := store.Recruiter{ID: store.NewID("rec"), TenantID: a, Email: "two@acme.test", CreatedAt: t0}
	require.NoError(t, s.CreateRecruiter(ctx, second))
	mine.RecruiterID = second.ID
	require.NoError(t, s.InsertAPIKey(ctx, mine))

	keys, next, err := s.ListAPIKeys(ctx, a, store.APIKeyFilter{}, store.Page{})
	require.NoError(t, err)
	assert.Empty(t, next)
	assert.ElementsMatch(t, []string{full.ID, bare.ID, nilScopes.ID, mine.ID}, ids(keys, func(k store.APIKey) string { return k.ID }))
	keys, _, err = s.ListAPIKeys(ctx, a, store.APIKeyFilter{RecruiterID: second.ID}, store.Page{})
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, mine, keys[0])
	keys, _, err = s.ListAPIKeys(ctx, f.bLive.TenantID, store.APIKeyFilter{}, store.Page{})
	require.NoError(t, err)
	assert.Equal(t, []string{bk.ID}, ids(keys, func(k store.APIKey) string { return k.ID }))
}

func testCountActive(t *testing.T, f *fixture) {
	ctx, s, a := f.ctx, f.s, f.aLive.TenantID
	now := at(24 * time.Hour)
	active := newKey(f, a, "active")
	future := newKey(f, a, "future")
	future.ExpiresAt = ptr(now.Add(time.Second))
	expired := newKey(f, a, "expired")
	expired.ExpiresAt = ptr(now)
	revoked := newKey(f, a, "revoked")
	revoked.RevokedAt = ptr(t0)
	for _, k := range []store.APIKey{active, future, expired, revoked} {
		require.NoError(t, s.InsertAPIKey(ctx, k))
	}
	n, err := s.CountActiveAPIKeys(ctx, a, now)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = s.CountActiveAPIKeys(ctx, a, now.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	n, err = s.CountActiveAPIKeys(ctx, f.bLive.TenantID, now)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
}

func testUsage(t *testing.T, f *fixture) {
	ctx, s, a := f.ctx, f.s, f.aLive.TenantID
	k1, k2 := newKey(f, a, "one"), newKey(f, a, "two")
	require.NoError(t, s.InsertAPIKey(ctx, k1))
	require.NoError(t, s.InsertAPIKey(ctx, k2))
	u := func(k store.APIKey, d time.Duration) store.Usage {
		return store.Usage{ID: store.NewIDAt("use", at(d)), KeyID: k.ID, TenantID: a, Environment: auth.Live, Surface: "rest",
			Endpoint: "GET /v1/api/candidates", Method: "GET", Status: 200, DurationMS: 12.5, IPHash: "iphash", TraceID: "trace", At: at(d)}
	}
	rows := []store.Usage{u(k1, 3*time.Minute), u(k1, 5*time.Minute), u(k1, time.Minute), u(k2, 2*time.Minute)}
	require.NoError(t, s.InsertUsage(ctx, rows))
	require.NoError(t, s.InsertUsage(ctx, nil))

	lastUsed := func(k store.APIKey) *time.Time {
		got, err := s.GetAPIKey(ctx, a, k.ID)
		require.NoError(t, err)
		return got.LastUsedAt
	}
	assert.Equal(t, ptr(at(5*time.Minute)), lastUsed(k1))
	assert.Equal(t, ptr(at(2*time.Minute)), lastUsed(k2))
	late := u(k1, time.Second)
	require.NoError(t, s.InsertUsage(ctx, []store.Usage{late}))
	assert.Equal(t, ptr(at(5*time.Minute)), lastUsed(k1), "an older batch flushed late must not move last_used_at back")

	got, next, err := s.ListUsage(ctx, a, k1.ID, store.Page{})
	require.NoError(t, err)
	assert.Empty(t, next)
	want := []store.Usage{rows[0], rows[1], rows[2], late}
	slices.SortFunc(want, func(x, y store.Usage) int { return strings.Compare(y.ID, x.ID) })
	assert.Equal(t, want, got, "all fields, newest first")

	// A range is [from, to) by at, and finds a row written before usage ids
	// carried their at (its id names the end of its request, later).
	old := u(k1, 4*time.Minute)
	old.ID = store.IDAt("use", at(14*time.Minute)) + "0000oldstyle1234"
	require.NoError(t, s.InsertUsage(ctx, []store.Usage{old}))
	between, err := s.UsageBetween(ctx, a, k1.ID, at(time.Minute), at(5*time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{rows[2].ID, rows[0].ID, old.ID}, ids(between, func(u store.Usage) string { return u.ID }))
	between, err = s.UsageBetween(ctx, f.bLive.TenantID, k1.ID, at(0), at(time.Hour), 10)
	require.NoError(t, err)
	assert.Empty(t, between, "another tenant reads no usage of the key")
	between, err = s.UsageBetween(ctx, a, k1.ID, at(0), at(time.Hour), 2)
	require.NoError(t, err)
	assert.Len(t, between, 2, "at most max rows")
	got, _, err = s.ListUsage(ctx, f.bLive.TenantID, k1.ID, store.Page{})
	require.NoError(t, err)
	assert.Empty(t, got, "another tenant sees no usage of the key")

	// A batch retried after its commit was lost: rows already written are
	// skipped, not a conflict that would block the rows after them.
	retry := []store.Usage{u(k2, time.Hour), rows[0]}
	require.NoError(t, s.InsertUsage(ctx, retry))
	assert.Equal(t, ptr(at(time.Hour)), lastUsed(k2))
	got, _, err = s.ListUsage(ctx, f.aLive.TenantID, k1.ID, store.Page{})
	require.NoError(t, err)
	assert.Len(t, got, 5, "rows[0] is not written twice")

	// A batch larger than one statement's worth of rows is written whole.
	bulk := make([]store.Usage, 450)
	for i := range bulk {
		bulk[i] = u(k2, time.Duration(i)*time.Second)
	}
	require.NoError(t, s.InsertUsage(ctx, bulk))
	n, page := 0, store.Page{Limit: 100}
	for {
		got, next, err := s.ListUsage(ctx, a, k2.ID, page)
		require.NoError(t, err)
		n += len(got)
		if next == "" {
			break
		}
		page.Cursor = next
	}
	assert.Equal(t, 450+2, n)
}

func testAudit(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	ev := func(ten store.Tenancy, action, target string, surface store.Surface) store.AuditEvent {
		return store.AuditEvent{ID: store.NewID("aud"), TenantID: ten.TenantID, Environment: ten.Environment, ActorKind: store.ActorAPIKey,
			ActorID: "key_1", Surface: surface, Action: action, TargetType: "candidate", TargetID: target, TraceID: "tr",
			Outcome: "ok", Data: map[string]any{"n": 1.5, "tags": []any{"a", "b"}, "nested": map[string]any{"ok": true}}, At: t0}
	}
	e1 := ev(f.aLive, "candidates.create", "cand_1", "rest")
	e2 := ev(f.aLive, "candidates.update", "cand_1", "mcp")
	e3 := ev(f.aLive, "candidates.create", "cand_2", "agent")
	e3.Data, e3.TargetType, e3.TraceID = nil, "", ""
	for _, e := range []store.AuditEvent{e1, ev(f.aTest, "candidates.create", "cand_1", "rest"), ev(f.bLive, "candidates.create", "cand_1", "rest")} {
		require.NoError(t, s.InsertAudit(ctx, e))
	}
	// The batched path (reads through MCP and the agent) writes the same
	// rows, and a retried batch skips what it already wrote.
	require.NoError(t, s.InsertAudits(ctx, []store.AuditEvent{e2, e3}))
	require.NoError(t, s.InsertAudits(ctx, []store.AuditEvent{e3, e2}))
	require.NoError(t, s.InsertAudits(ctx, nil))
	list := func(ten store.Tenancy, fl store.AuditFilter) []store.AuditEvent {
		got, _, err := s.ListAudit(ctx, ten, fl, store.Page{})
		require.NoError(t, err)
		return got
	}
	assert.Equal(t, byNewest(e3, e2, e1), list(f.aLive, store.AuditFilter{}))
	assert.Equal(t, byNewest(e3, e1), list(f.aLive, store.AuditFilter{Action: "candidates.create"}))
	assert.Equal(t, byNewest(e2, e1), list(f.aLive, store.AuditFilter{TargetID: "cand_1"}))
	assert.Equal(t, []store.AuditEvent{e2}, list(f.aLive, store.AuditFilter{Surface: "mcp"}))
	assert.Len(t, list(f.aLive, store.AuditFilter{ActorID: "key_1"}), 3)
	assert.Empty(t, list(f.aLive, store.AuditFilter{ActorID: "key_2"}))
	for _, o := range f.others() {
		assert.Len(t, list(o, store.AuditFilter{}), 1)
	}
}

func testCandidates(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	c := store.Candidate{ID: store.NewID("cand"), Name: "Ada Lovelace", Email: "ada@example.test", Phone: "+44 1",
		Role: "Engineer", ExternalRef: "ats-1", CreatedAt: t0, UpdatedAt: at(time.Second)}
	require.NoError(t, s.InsertCandidate(ctx, f.aLive, c))
	assert.ErrorIs(t, s.InsertCandidate(ctx, f.aLive, c), store.ErrConflict)
	got, err := s.GetCandidate(ctx, f.aLive, c.ID)
	require.NoError(t, err)
	c.Version = 1
	assert.Equal(t, c, got)

	for _, o := range f.others() {
		_, err := s.GetCandidate(ctx, o, c.ID)
		assert.ErrorIs(t, err, store.ErrNotFound, "get from %v", o)
		_, err = s.UpdateCandidate(ctx, o, got)
		assert.ErrorIs(t, err, store.ErrNotFound, "update from %v", o)
		list, _, err := s.ListCandidates(ctx, o, store.CandidateFilter{}, store.Page{})
		require.NoError(t, err)
		assert.Empty(t, list, "list from %v", o)
	}

	got.Name, got.Email, got.Phone, got.Role, got.ExternalRef, got.UpdatedAt = "Ada King", "", "", "", "", at(time.Hour)
	upd, err := s.UpdateCandidate(ctx, f.aLive, got)
	require.NoError(t, err)
	assert.Equal(t, 2, upd.Version)
	again, err := s.GetCandidate(ctx, f.aLive, c.ID)
	require.NoError(t, err)
	assert.Equal(t, upd, again)
	assert.Equal(t, t0, again.CreatedAt, "update leaves created_at alone")

	_, err = s.UpdateCandidate(ctx, f.aLive, got) // still version 1
	assert.ErrorIs(t, err, store.ErrConflict)
	_, err = s.UpdateCandidate(ctx, f.aLive, store.Candidate{ID: "cand_missing", Version: 1})
	assert.ErrorIs(t, err, store.ErrNotFound)
	unchanged, err := s.GetCandidate(ctx, f.aLive, c.ID)
	require.NoError(t, err)
	assert.Equal(t, upd, unchanged, "a refused update writes nothing")

	assert.ErrorIs(t, s.InsertCandidate(ctx, store.Tenancy{TenantID: "ten_missing", Environment: auth.Live}, store.Candidate{ID: store.NewID("cand"), Name: "x"}),
		store.ErrNotFound, "unknown tenant")
}

func testCandidateFilters(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	mk := func(name, email, ref string) store.Candidate {
		c := store.Candidate{ID: store.NewID("cand"), Name: name, Email: email, ExternalRef: ref, CreatedAt: t0, UpdatedAt: t0}
		require.NoError(t, s.InsertCandidate(ctx, f.aLive, c))
		return c
	}
	ada := mk("Ada Lovelace", "Ada@Example.test", "ats-1")
	grace := mk("Grace Hopper", "grace@navy.test", "ats-2")
	pct := mk("100% Real", "pct@example.test", "")
	other := store.Candidate{ID: store.NewID("cand"), Name: "Ada Other", Email: "ada@example.test", ExternalRef: "ats-1", CreatedAt: t0, UpdatedAt: t0}
	require.NoError(t, s.InsertCandidate(ctx, f.aTest, other))

	find := func(fl store.CandidateFilter) []string {
		got, _, err := s.ListCandidates(ctx, f.aLive, fl, store.Page{})
		require.NoError(t, err)
		return ids(got, func(c store.Candidate) string { return c.ID })
	}
	assert.Equal(t, newest(pct.ID, grace.ID, ada.ID), find(store.CandidateFilter{}))
	assert.Equal(t, newest(ada.ID), find(store.CandidateFilter{Email: "ADA@example.TEST"}))
	assert.Equal(t, newest(grace.ID), find(store.CandidateFilter{ExternalRef: "ats-2"}))
	assert.Empty(t, find(store.CandidateFilter{ExternalRef: "ATS-2"}), "external ref is exact")
	assert.Equal(t, newest(pct.ID, ada.ID), find(store.CandidateFilter{Query: "EXAMPLE"}))
	assert.Equal(t, newest(grace.ID), find(store.CandidateFilter{Query: "hopp"}))
	assert.Equal(t, newest(pct.ID), find(store.CandidateFilter{Query: "0%"}), "LIKE wildcards are literal")
	assert.Empty(t, find(store.CandidateFilter{Query: "_"}))
	assert.Empty(t, find(store.CandidateFilter{Email: "ada@example.test", ExternalRef: "ats-2"}), "filters combine")
}

func testReferences(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	c := f.candidate(t, f.aLive, "ref")
	r := store.ReferenceRequest{ID: store.NewID("req"), CandidateID: c.ID, RecruiterID: f.recruiter, Status: store.RequestSent,
		DueDate:   ptr(at(14 * 24 * time.Hour)),
		Questions: []store.Question{{ID: "q1", Text: "How good?", Kind: "rating"}, {ID: "q2", Text: "Why?", Kind: "text"}},
		Referees: []store.Referee{
			{ID: "rf1", Name: "Bob", Email: "bob@x.test", Relationship: "manager", Company: "X", State: store.InviteResponded,
				InvitedAt: ptr(at(time.Minute)), InviteExpiresAt: ptr(at(time.Hour)), OpenedAt: ptr(at(2 * time.Minute)),
				RespondedAt: ptr(at(3 * time.Minute)), InvitationsSent: 2,
				Answers: []store.Answer{{QuestionID: "q1", Rating: 5}, {QuestionID: "q2", Text: "Great"}}},
			{ID: "rf2", Name: "Eve", Email: "eve@x.test", Relationship: "peer", State: store.InviteDeclined,
				DeclinedAt: ptr(at(time.Hour)), DeclineReason: "busy"},
		},
		CreatedAt: t0, UpdatedAt: t0}
	require.NoError(t, s.InsertReference(ctx, f.aLive, r))
	got, err := s.GetReference(ctx, f.aLive, r.ID)
	require.NoError(t, err)
	r.Version = 1
	assert.Equal(t, r, got)

	empty := store.ReferenceRequest{ID: store.NewID("req"), CandidateID: c.ID, RecruiterID: f.recruiter, Status: store.RequestDraft,
		Questions: []store.Question{}, CreatedAt: t0, UpdatedAt: t0}
	require.NoError(t, s.InsertReference(ctx, f.aLive, empty))
	gotEmpty, err := s.GetReference(ctx, f.aLive, empty.ID)
	require.NoError(t, err)
	assert.Nil(t, gotEmpty.DueDate)
	assert.Equal(t, []store.Question{}, gotEmpty.Questions)
	assert.Nil(t, gotEmpty.Referees)

	// A request cannot point at a candidate of another tenancy.
	foreign := store.ReferenceRequest{ID: store.NewID("req"), CandidateID: c.ID, Status: store.RequestDraft, CreatedAt: t0, UpdatedAt: t0}
	assert.ErrorIs(t, s.InsertReference(ctx, f.aTest, foreign), store.ErrNotFound)

	for _, o := range f.others() {
		_, err := s.GetReference(ctx, o, r.ID)
		assert.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.UpdateReference(ctx, o, got)
		assert.ErrorIs(t, err, store.ErrNotFound)
		list, _, err := s.ListReferences(ctx, o, store.ReferenceFilter{}, store.Page{})
		require.NoError(t, err)
		assert.Empty(t, list)
	}

	got.Status, got.DueDate = store.RequestCompleted, nil
	got.Referees[1].State = store.InviteExpired
	got.UpdatedAt = at(time.Hour)
	upd, err := s.UpdateReference(ctx, f.aLive, got)
	require.NoError(t, err)
	assert.Equal(t, 2, upd.Version)
	again, err := s.GetReference(ctx, f.aLive, r.ID)
	require.NoError(t, err)
	assert.Equal(t, upd, again)
	_, err = s.UpdateReference(ctx, f.aLive, got)
	assert.ErrorIs(t, err, store.ErrConflict)

	c2 := f.candidate(t, f.aLive, "two")
	third := store.ReferenceRequest{ID: store.NewID("req"), CandidateID: c2.ID, RecruiterID: f.recruiter, Status: store.RequestCompleted, CreatedAt: t0, UpdatedAt: t0}
	require.NoError(t, s.InsertReference(ctx, f.aLive, third))
	find := func(fl store.ReferenceFilter) []string {
		got, _, err := s.ListReferences(ctx, f.aLive, fl, store.Page{})
		require.NoError(t, err)
		return ids(got, func(r store.ReferenceRequest) string { return r.ID })
	}
	assert.Equal(t, newest(third.ID, empty.ID, r.ID), find(store.ReferenceFilter{}))
	assert.Equal(t, newest(empty.ID, r.ID), find(store.ReferenceFilter{CandidateID: c.ID}))
	assert.Equal(t, newest(third.ID, r.ID), find(store.ReferenceFilter{Status: store.RequestCompleted}))
	assert.Equal(t, newest(r.ID), find(store.ReferenceFilter{CandidateID: c.ID, Status: store.RequestCompleted}))
}

func testReports(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	req := f.request(t, f.aLive)
	r := store.Report{ID: store.NewID("rep"), RequestID: req.ID,
		Content:   map[string]any{"summary": "Strong", "score": 4.5, "themes": []any{"ownership", "clarity"}, "by": map[string]any{"q1": 5.0}},
		Shares:    []store.Share{{ID: "sh1", ExpiresAt: at(time.Hour), CreatedAt: t0}, {ID: "sh2", ExpiresAt: at(time.Hour), CreatedAt: t0, RevokedAt: ptr(at(time.Minute))}},
		CreatedAt: t0, UpdatedAt: t0}
	require.NoError(t, s.InsertReport(ctx, f.aLive, r))
	got, err := s.GetReport(ctx, f.aLive, r.ID)
	require.NoError(t, err)
	r.Version = 1
	assert.Equal(t, r, got)
	assert.ErrorIs(t, s.InsertReport(ctx, f.aLive, r), store.ErrConflict)
	bad := store.Report{ID: store.NewID("rep"), RequestID: req.ID, CreatedAt: t0, UpdatedAt: t0}
	assert.ErrorIs(t, s.InsertReport(ctx, f.bLive, bad), store.ErrNotFound, "request of another tenancy")

	for _, o := range f.others() {
		_, err := s.GetReport(ctx, o, r.ID)
		assert.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.UpdateReport(ctx, o, got)
		assert.ErrorIs(t, err, store.ErrNotFound)
		list, _, err := s.ListReports(ctx, o, store.ReportFilter{}, store.Page{})
		require.NoError(t, err)
		assert.Empty(t, list)
	}

	got.Shares = append(got.Shares, store.Share{ID: "sh3", ExpiresAt: at(2 * time.Hour), CreatedAt: at(time.Minute)})
	got.Content = nil
	got.UpdatedAt = at(time.Minute)
	upd, err := s.UpdateReport(ctx, f.aLive, got)
	require.NoError(t, err)
	again, err := s.GetReport(ctx, f.aLive, r.ID)
	require.NoError(t, err)
	assert.Equal(t, upd, again)
	assert.Equal(t, 2, again.Version)
	assert.Nil(t, again.Content)
	_, err = s.UpdateReport(ctx, f.aLive, got)
	assert.ErrorIs(t, err, store.ErrConflict)

	req2 := f.request(t, f.aLive)
	r2 := store.Report{ID: store.NewID("rep"), RequestID: req2.ID, CreatedAt: t0, UpdatedAt: t0}
	require.NoError(t, s.InsertReport(ctx, f.aLive, r2))
	list, _, err := s.ListReports(ctx, f.aLive, store.ReportFilter{RequestID: req.ID}, store.Page{})
	require.NoError(t, err)
	assert.Equal(t, []store.Report{again}, list)
	list, _, err = s.ListReports(ctx, f.aLive, store.ReportFilter{}, store.Page{})
	require.NoError(t, err)
	assert.Equal(t, newest(r2.ID, r.ID), ids(list, func(r store.Report) string { return r.ID }))
}

func testValuations(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	req := f.request(t, f.aLive)
	done := store.Valuation{ID: store.NewID("val"), TenantID: f.aLive.TenantID, Environment: auth.Live, RequestID: req.ID,
		Status: store.ValuationSucceeded, Attempts: 2, NextAttemptAt: at(time.Minute), LeaseUntil: ptr(at(time.Hour)),
		Score: ptr(0.0), Components: &store.ValuationComponents{Base: 4, Ratings: 2}, Rationale: "because", Error: "first try failed",
		WorkerID: "w1", CreatedAt: t0, StartedAt: ptr(at(time.Second)), FinishedAt: ptr(at(2 * time.Minute))}
	require.NoError(t, s.InsertValuation(ctx, f.aLive, done))
	got, err := s.GetValuation(ctx, f.aLive, done.ID)
	require.NoError(t, err)
	assert.Equal(t, done, got)
	assert.ErrorIs(t, s.InsertValuation(ctx, f.aLive, done), store.ErrConflict)

	queued := f.queued(t, f.aLive, req.ID, at(time.Hour))
	got, err = s.GetValuation(ctx, f.aLive, queued.ID)
	require.NoError(t, err)
	assert.Equal(t, queued, got)
	assert.Nil(t, got.Score, "NULL score stays nil, distinct from 0")

	for _, o := range f.others() {
		_, err := s.GetValuation(ctx, o, done.ID)
		assert.ErrorIs(t, err, store.ErrNotFound)
		list, _, err := s.ListValuations(ctx, o, store.ValuationFilter{}, store.Page{})
		require.NoError(t, err)
		assert.Empty(t, list)
	}
	req2 := f.request(t, f.aLive)
	other := f.queued(t, f.aLive, req2.ID, at(time.Hour))
	find := func(fl store.ValuationFilter) []string {
		got, _, err := s.ListValuations(ctx, f.aLive, fl, store.Page{})
		require.NoError(t, err)
		return ids(got, func(v store.Valuation) string { return v.ID })
	}
	assert.Equal(t, newest(other.ID, queued.ID, done.ID), find(store.ValuationFilter{}))
	assert.Equal(t, newest(queued.ID, done.ID), find(store.ValuationFilter{RequestID: req.ID}))
	assert.Equal(t, newest(other.ID, queued.ID), find(store.ValuationFilter{Status: store.ValuationQueued}))
	assert.Equal(t, newest(queued.ID), find(store.ValuationFilter{RequestID: req.ID, Status: store.ValuationQueued}))
}

func testClaimExclusive(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	now, lease := at(time.Minute), at(time.Hour)
	want := map[string]bool{}
	for i, ten := range []store.Tenancy{f.aLive, f.aTest, f.bLive, f.aLive, f.aTest, f.bLive, f.aLive, f.aLive, f.bLive, f.aTest} {
		bTen := ten
		if ten.TenantID == f.bLive.TenantID {
			bTen = f.bLive
		}
		req := f.request(t, bTen)
		want[f.queued(t, bTen, req.ID, at(time.Duration(i)*time.Second)).ID] = true
	}
	req := f.request(t, f.aLive)
	later := f.queued(t, f.aLive, req.ID, now.Add(time.Second))

	var (
		mu      sync.Mutex
		claimed []string
		wg      sync.WaitGroup
		errs    = make(chan error, 20)
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, err := s.ClaimValuation(ctx, now, lease)
				if errors.Is(err, store.ErrNotFound) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if v.Status != store.ValuationRunning || v.Attempts != 1 || v.LeaseUntil == nil || !v.LeaseUntil.Equal(lease) {
					errs <- fmt.Errorf("claimed %+v", v)
				}
				mu.Lock()
				claimed = append(claimed, v.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Len(t, claimed, 10, "each run claimed exactly once")
	got := map[string]bool{}
	for _, id := range claimed {
		got[id] = true
	}
	assert.Equal(t, want, got)
	assert.NotContains(t, got, later.ID, "not due yet")

	v, err := s.ClaimValuation(ctx, now.Add(time.Second), lease)
	require.NoError(t, err)
	assert.Equal(t, later.ID, v.ID, "due now")
	_, err = s.ClaimValuation(ctx, now.Add(time.Second), lease)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func testClaimLease(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	req := f.request(t, f.aTest)
	first := f.queued(t, f.aTest, req.ID, t0)
	second := f.queued(t, f.aTest, req.ID, at(time.Second))

	v, err := s.ClaimValuation(ctx, at(time.Minute), at(10*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, first.ID, v.ID, "oldest due first")
	want := first
	want.Status, want.Attempts, want.LeaseUntil, want.StartedAt = store.ValuationRunning, 1, ptr(at(10*time.Minute)), ptr(at(time.Minute))
	assert.Equal(t, want, v)
	stored, err := s.GetValuation(ctx, f.aTest, first.ID)
	require.NoError(t, err)
	assert.Equal(t, want, stored)

	v2, err := s.ClaimValuation(ctx, at(time.Minute), at(10*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, second.ID, v2.ID)
	_, err = s.ClaimValuation(ctx, at(5*time.Minute), at(15*time.Minute))
	assert.ErrorIs(t, err, store.ErrNotFound, "leases still held")

	// The lease of the first worker lapses; another worker takes the run over.
	re, err := s.ClaimValuation(ctx, at(11*time.Minute), at(20*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, first.ID, re.ID)
	assert.Equal(t, 2, re.Attempts)
	assert.Equal(t, ptr(at(time.Minute)), re.StartedAt, "started_at keeps the first start")
	assert.Equal(t, ptr(at(20*time.Minute)), re.LeaseUntil)

	stale := v
	stale.Status, stale.Score, stale.FinishedAt = store.ValuationSucceeded, ptr(1.0), ptr(at(12*time.Minute))
	assert.ErrorIs(t, s.FinishValuation(ctx, stale), store.ErrConflict, "the first worker lost the run")

	fin := re
	fin.Status, fin.Score, fin.Components, fin.Rationale = store.ValuationSucceeded, ptr(3.75), &store.ValuationComponents{WeightedAverageRating: 1}, "solid"
	fin.WorkerID, fin.FinishedAt, fin.LeaseUntil, fin.NextAttemptAt = "w2", ptr(at(13*time.Minute)), nil, at(13*time.Minute)
	require.NoError(t, s.FinishValuation(ctx, fin))
	stored, err = s.GetValuation(ctx, f.aTest, first.ID)
	require.NoError(t, err)
	assert.Equal(t, fin, stored)
	assert.ErrorIs(t, s.FinishValuation(ctx, fin), store.ErrConflict, "no longer running")

	// A failed attempt can go back to the queue for a later retry.
	retry := v2
	retry.Status, retry.Error, retry.LeaseUntil, retry.NextAttemptAt = store.ValuationQueued, "provider down", nil, at(30*time.Minute)
	require.NoError(t, s.FinishValuation(ctx, retry))
	_, err = s.ClaimValuation(ctx, at(29*time.Minute), at(40*time.Minute))
	assert.ErrorIs(t, err, store.ErrNotFound)
	again, err := s.ClaimValuation(ctx, at(30*time.Minute), at(40*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, second.ID, again.ID)
	assert.Equal(t, 2, again.Attempts)
	assert.Equal(t, "provider down", again.Error)
}

func testOutbox(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	msg := func(ten store.Tenancy, due time.Time) store.OutboxMessage {
		return store.OutboxMessage{ID: store.NewID("out"), TenantID: ten.TenantID, Environment: ten.Environment, To: "bob@x.test",
			Subject: "Reference for Ada", Body: "Please answer: https://…", CreatedAt: t0, NextAttemptAt: due}
	}
	m1, m2, m3, later := msg(f.aLive, t0), msg(f.bLive, at(time.Second)), msg(f.aTest, at(2*time.Second)), msg(f.aLive, at(time.Hour))
	for _, m := range []store.OutboxMessage{m1, m2, m3, later} {
		require.NoError(t, s.InsertOutbox(ctx, store.Tenancy{TenantID: m.TenantID, Environment: m.Environment}, m))
	}
	assert.ErrorIs(t, s.InsertOutbox(ctx, f.aLive, m1), store.ErrConflict)

	now, lease := at(time.Minute), at(2*time.Minute)
	got, err := s.ClaimOutbox(ctx, now, lease, 2)
	require.NoError(t, err)
	m1.NextAttemptAt, m2.NextAttemptAt = lease, lease
	assert.Equal(t, []store.OutboxMessage{m1, m2}, got, "oldest due first, at most n")
	got, err = s.ClaimOutbox(ctx, now, lease, 10)
	require.NoError(t, err)
	m3.NextAttemptAt = lease
	assert.Equal(t, []store.OutboxMessage{m3}, got)
	got, err = s.ClaimOutbox(ctx, now, lease, 10)
	require.NoError(t, err)
	assert.Empty(t, got, "claimed messages are leased")

	// A claim is proved by its lease: renewing or recording with another fails.
	assert.ErrorIs(t, s.LeaseOutbox(ctx, m1.ID, now, at(3*time.Minute)), store.ErrConflict, "not the lease m1 holds")
	require.NoError(t, s.LeaseOutbox(ctx, m1.ID, lease, at(150*time.Second)), "renewed")
	assert.ErrorIs(t, s.MarkOutbox(ctx, m1.ID, lease, nil, "x", now), store.ErrConflict, "the renewal replaced that lease")
	require.NoError(t, s.MarkOutbox(ctx, m1.ID, at(150*time.Second), ptr(at(90*time.Second)), "", lease))
	require.NoError(t, s.MarkOutbox(ctx, m1.ID, at(150*time.Second), ptr(at(91*time.Second)), "", lease), "recording a delivery twice changes nothing")
	assert.ErrorIs(t, s.LeaseOutbox(ctx, m1.ID, at(150*time.Second), at(4*time.Minute)), store.ErrConflict, "a sent message is held by no one")
	require.NoError(t, s.MarkOutbox(ctx, m2.ID, lease, nil, "smtp 451", at(5*time.Minute)))
	assert.ErrorIs(t, s.MarkOutbox(ctx, m2.ID, lease, nil, "smtp 451", at(5*time.Minute)), store.ErrConflict, "a failure is recorded once per claim")
	assert.ErrorIs(t, s.MarkOutbox(ctx, "out_missing", now, nil, "", now), store.ErrConflict)

	got, err = s.ClaimOutbox(ctx, at(3*time.Minute), at(10*time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{m3.ID}, ids(got, func(m store.OutboxMessage) string { return m.ID }), "lease of m3 lapsed; m1 was sent; m2 waits")
	require.NoError(t, s.LeaseOutbox(ctx, m3.ID, at(10*time.Minute), at(3*time.Minute)), "released")
	got, err = s.ClaimOutbox(ctx, at(3*time.Minute), at(10*time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{m3.ID}, ids(got, func(m store.OutboxMessage) string { return m.ID }), "a released message is due at once")
	assert.Zero(t, got[0].Attempts, "claims and releases are not attempts")
	got, err = s.ClaimOutbox(ctx, at(5*time.Minute), at(6*time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, m2.ID, got[0].ID)
	assert.Equal(t, 1, got[0].Attempts)
	assert.Equal(t, "smtp 451", got[0].LastError)
	assert.Nil(t, got[0].SentAt)
	got, err = s.ClaimOutbox(ctx, at(time.Hour), at(2*time.Hour), 0)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func testPublicTokens(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	tok := func(ten store.Tenancy, kind store.TokenKind, target, sub string) store.PublicToken {
		return store.PublicToken{Hash: []byte(auth.RandomString(32)), Kind: kind, TenantID: ten.TenantID, Environment: ten.Environment,
			TargetID: target, SubID: sub, CreatedAt: t0, ExpiresAt: at(time.Hour)}
	}
	rf1 := tok(f.aLive, store.TokenInvitation, "req_1", "rf1")
	rf1b := tok(f.aLive, store.TokenInvitation, "req_1", "rf1")
	rf2 := tok(f.aLive, store.TokenInvitation, "req_1", "rf2")
	old := tok(f.aLive, store.TokenInvitation, "req_1", "rf2")
	old.RevokedAt = ptr(at(time.Second))
	share := tok(f.aLive, store.TokenShare, "req_1", "rf1") // same ids, other kind
	otherEnv := tok(f.aTest, store.TokenInvitation, "req_1", "rf1")
	all := []store.PublicToken{rf1, rf1b, rf2, old, share, otherEnv}
	for _, p := range all {
		require.NoError(t, s.InsertPublicToken(ctx, p))
	}
	got, err := s.PublicTokenByHash(ctx, rf1.Hash)
	require.NoError(t, err)
	assert.Equal(t, rf1, got)
	assert.ErrorIs(t, s.InsertPublicToken(ctx, rf1), store.ErrConflict)
	_, err = s.PublicTokenByHash(ctx, []byte("nope"))
	assert.ErrorIs(t, err, store.ErrNotFound)

	rf1.UsedAt, rf1.ExpiresAt = ptr(at(time.Minute)), at(2*time.Hour)
	require.NoError(t, s.UpdatePublicToken(ctx, rf1))
	got, err = s.PublicTokenByHash(ctx, rf1.Hash)
	require.NoError(t, err)
	assert.Equal(t, rf1, got)
	assert.ErrorIs(t, s.UpdatePublicToken(ctx, store.PublicToken{Hash: []byte("nope"), ExpiresAt: t0}), store.ErrNotFound)

	// Another tenancy's revoke touches nothing.
	require.NoError(t, s.RevokePublicTokens(ctx, f.bLive, store.TokenInvitation, "req_1", "", at(time.Minute)))
	revokedAt := func(p store.PublicToken) *time.Time {
		got, err := s.PublicTokenByHash(ctx, p.Hash)
		require.NoError(t, err)
		return got.RevokedAt
	}
	for _, p := range all {
		assert.Equal(t, p.RevokedAt, revokedAt(p))
	}
	// Re-inviting rf1 revokes its tokens only.
	require.NoError(t, s.RevokePublicTokens(ctx, f.aLive, store.TokenInvitation, "req_1", "rf1", at(2*time.Minute)))
	assert.Equal(t, ptr(at(2*time.Minute)), revokedAt(rf1))
	assert.Equal(t, ptr(at(2*time.Minute)), revokedAt(rf1b))
	assert.Nil(t, revokedAt(rf2))
	assert.Nil(t, revokedAt(share))
	assert.Nil(t, revokedAt(otherEnv))
	// Cancelling the request revokes the rest; earlier revocations keep their time.
	require.NoError(t, s.RevokePublicTokens(ctx, f.aLive, store.TokenInvitation, "req_1", "", at(3*time.Minute)))
	assert.Equal(t, ptr(at(2*time.Minute)), revokedAt(rf1))
	assert.Equal(t, ptr(at(3*time.Minute)), revokedAt(rf2))
	assert.Equal(t, ptr(at(time.Second)), revokedAt(old))
	assert.Nil(t, revokedAt(share))
	assert.Nil(t, revokedAt(otherEnv))
}

func testIdempotency(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	r := store.IdempotencyRecord{KeyID: "key_1", Key: "abc", Operation: "references_start", RequestHash: "h1", Status: 201,
		Response: []byte(`{"id":"req_1"}`), CreatedAt: t0}
	require.NoError(t, s.InsertIdempotency(ctx, f.aLive, r))
	got, err := s.GetIdempotency(ctx, f.aLive, "key_1", "abc")
	require.NoError(t, err)
	assert.Equal(t, r, got)
	dup := r
	dup.RequestHash, dup.Status = "h2", 500
	assert.ErrorIs(t, s.InsertIdempotency(ctx, f.aLive, dup), store.ErrConflict)
	got, err = s.GetIdempotency(ctx, f.aLive, "key_1", "abc")
	require.NoError(t, err)
	assert.Equal(t, r, got, "the first answer stays")

	for _, o := range f.others() {
		_, err := s.GetIdempotency(ctx, o, "key_1", "abc")
		assert.ErrorIs(t, err, store.ErrNotFound)
	}
	require.NoError(t, s.InsertIdempotency(ctx, f.aTest, r), "same key in another environment")
	other := r
	other.KeyID = "key_2"
	require.NoError(t, s.InsertIdempotency(ctx, f.aLive, other), "same key under another API key")
	_, err = s.GetIdempotency(ctx, f.aLive, "key_1", "abd")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func testConversations(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	c := store.Conversation{ID: store.NewID("conv"), RecruiterID: f.recruiter, KeyID: "key_1",
		Messages: []byte(`[{"role":"user","content":"hi"}]`), CreatedAt: t0, UpdatedAt: t0}
	saved, err := s.SaveConversation(ctx, f.aLive, c)
	require.NoError(t, err)
	assert.Equal(t, 1, saved.Version)
	got, err := s.GetConversation(ctx, f.aLive, c.ID)
	require.NoError(t, err)
	assert.Equal(t, saved, got)
	_, err = s.SaveConversation(ctx, f.aLive, c)
	assert.ErrorIs(t, err, store.ErrConflict, "inserting an existing id")

	got.Messages = []byte(`[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]`)
	got.UpdatedAt = at(time.Minute)
	saved2, err := s.SaveConversation(ctx, f.aLive, got)
	require.NoError(t, err)
	assert.Equal(t, 2, saved2.Version)
	again, err := s.GetConversation(ctx, f.aLive, c.ID)
	require.NoError(t, err)
	assert.Equal(t, saved2, again)
	_, err = s.SaveConversation(ctx, f.aLive, got)
	assert.ErrorIs(t, err, store.ErrConflict, "stale version")

	for _, o := range f.others() {
		_, err := s.GetConversation(ctx, o, c.ID)
		assert.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.SaveConversation(ctx, o, again)
		assert.ErrorIs(t, err, store.ErrNotFound)
	}
}

func testPagination(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	var want []string
	for i := range 7 {
		want = append(want, f.candidate(t, f.aLive, fmt.Sprintf("p%d", i)).ID)
		f.candidate(t, f.aTest, "noise")
	}
	slices.Sort(want)
	slices.Reverse(want)

	var got []string
	cursor, pages := "", 0
	for {
		page, next, err := s.ListCandidates(ctx, f.aLive, store.CandidateFilter{}, store.Page{Limit: 2, Cursor: cursor})
		require.NoError(t, err)
		pages++
		require.LessOrEqual(t, len(page), 2)
		got = append(got, ids(page, func(c store.Candidate) string { return c.ID })...)
		if next == "" {
			break
		}
		require.Less(t, pages, 10, "pagination does not end")
		cursor = next
	}
	assert.Equal(t, want, got, "every row once, newest first")
	assert.Equal(t, 4, pages)

	// A limit that divides the rows exactly may end on a full page with no cursor or an empty one, never a repeat.
	first, next, err := s.ListCandidates(ctx, f.aLive, store.CandidateFilter{}, store.Page{Limit: 7})
	require.NoError(t, err)
	assert.Len(t, first, 7)
	assert.Empty(t, next)
	all, _, err := s.ListCandidates(ctx, f.aLive, store.CandidateFilter{}, store.Page{Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, all, 7)

	for _, bad := range []string{"!!!", "bm90LWFuLWlk" /* "not-an-id" */} {
		_, _, err = s.ListCandidates(ctx, f.aLive, store.CandidateFilter{}, store.Page{Cursor: bad})
		assert.ErrorIs(t, err, store.ErrBadCursor, bad)
		_, _, err = s.ListAudit(ctx, f.aLive, store.AuditFilter{}, store.Page{Cursor: bad})
		assert.ErrorIs(t, err, store.ErrBadCursor, bad)
	}

	// Audit pages the same way, across the other list implementations.
	for i := range 5 {
		require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{ID: store.NewID("aud"), TenantID: f.aLive.TenantID, Environment: auth.Live,
			ActorKind: store.ActorSystem, Action: fmt.Sprint(i), Outcome: "ok", At: t0}))
	}
	p1, c1, err := s.ListAudit(ctx, f.aLive, store.AuditFilter{}, store.Page{Limit: 3})
	require.NoError(t, err)
	require.NotEmpty(t, c1)
	p2, c2, err := s.ListAudit(ctx, f.aLive, store.AuditFilter{}, store.Page{Limit: 3, Cursor: c1})
	require.NoError(t, err)
	assert.Empty(t, c2)
	assert.Len(t, append(p1, p2...), 5)
	assert.Less(t, p2[0].ID, p1[2].ID)
}

func testInTx(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	boom := errors.New("boom")
	c := store.Candidate{ID: store.NewID("cand"), Name: "Tx", CreatedAt: t0, UpdatedAt: t0}
	ev := store.AuditEvent{ID: store.NewID("aud"), TenantID: f.aLive.TenantID, Environment: auth.Live, ActorKind: store.ActorAPIKey,
		ActorID: "key_1", Action: "candidates.create", TargetID: c.ID, Outcome: "ok", At: t0}

	err := s.InTx(ctx, func(q store.Queries) error {
		require.NoError(t, q.InsertCandidate(ctx, f.aLive, c))
		require.NoError(t, q.InsertAudit(ctx, ev))
		got, err := q.GetCandidate(ctx, f.aLive, c.ID)
		require.NoError(t, err, "a transaction reads its own writes")
		assert.Equal(t, "Tx", got.Name)
		return boom
	})
	assert.ErrorIs(t, err, boom)
	_, err = s.GetCandidate(ctx, f.aLive, c.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "rolled back")
	events, _, err := s.ListAudit(ctx, f.aLive, store.AuditFilter{}, store.Page{})
	require.NoError(t, err)
	assert.Empty(t, events, "rolled back")

	// A store error inside fn also rolls everything back.
	err = s.InTx(ctx, func(q store.Queries) error {
		require.NoError(t, q.InsertCandidate(ctx, f.aLive, c))
		return q.InsertCandidate(ctx, f.aLive, c)
	})
	assert.ErrorIs(t, err, store.ErrConflict)
	_, err = s.GetCandidate(ctx, f.aLive, c.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.InTx(ctx, func(q store.Queries) error {
		if err := q.InsertCandidate(ctx, f.aLive, c); err != nil {
			return err
		}
		cur, err := q.GetCandidate(ctx, f.aLive, c.ID)
		if err != nil {
			return err
		}
		cur.Name = "Tx2"
		if _, err := q.UpdateCandidate(ctx, f.aLive, cur); err != nil {
			return err
		}
		return q.InsertAudit(ctx, ev)
	}))
	got, err := s.GetCandidate(ctx, f.aLive, c.ID)
	require.NoError(t, err)
	assert.Equal(t, "Tx2", got.Name)
	assert.Equal(t, 2, got.Version)
	events, _, err = s.ListAudit(ctx, f.aLive, store.AuditFilter{}, store.Page{})
	require.NoError(t, err)
	assert.Equal(t, []store.AuditEvent{ev}, events)
}

// testConcurrentWrites is the "database is locked" check: many requests
// writing and reading at once must all succeed.
func testConcurrentWrites(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				c := store.Candidate{ID: store.NewID("cand"), Name: fmt.Sprintf("c%d-%d", i, j), CreatedAt: t0, UpdatedAt: t0}
				err := s.InTx(ctx, func(q store.Queries) error {
					if err := q.InsertCandidate(ctx, f.aLive, c); err != nil {
						return err
					}
					return q.InsertAudit(ctx, store.AuditEvent{ID: store.NewID("aud"), TenantID: f.aLive.TenantID, Environment: auth.Live,
						ActorKind: store.ActorSystem, Action: "x", TargetID: c.ID, Outcome: "ok", At: t0})
				})
				if err == nil {
					_, err = s.GetCandidate(ctx, f.aLive, c.ID)
				}
				if err == nil {
					_, _, err = s.ListCandidates(ctx, f.aLive, store.CandidateFilter{}, store.Page{Limit: 5})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, _, err := s.ListCandidates(ctx, f.aLive, store.CandidateFilter{}, store.Page{Limit: 200})
	require.NoError(t, err)
	assert.Len(t, all, 80)
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

// newest orders ids as lists return them: by id, descending. The suite
// sorts rather than assuming creation order, so it holds for ids made by
// several processes too, whose order within a millisecond is random.
func newest(ids ...string) []string {
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids
}

func byNewest(evs ...store.AuditEvent) []store.AuditEvent {
	slices.SortFunc(evs, func(x, y store.AuditEvent) int { return strings.Compare(y.ID, x.ID) })
	return evs
}

// A trail narrowed to an outcome finds exactly its events, whether the
// outcome is a failure (served by the index of failures alone) or ok.
func testAuditOutcomes(t *testing.T, f *fixture) {
	by := store.Actor{Kind: store.ActorAPIKey, ID: "key_1"}
	var want = map[string][]string{}
	for i, o := range []store.Outcome{store.OutcomeOK, "FORBIDDEN", store.OutcomeOK, "NOT_FOUND", "FORBIDDEN"} {
		e := store.NewAuditEvent(f.aLive, by, "mcp", "trace", "candidates_get", at(time.Duration(i)*time.Second)).WithOutcome(o)
		require.NoError(t, f.s.InsertAudit(f.ctx, e))
		want[string(o)] = append([]string{e.ID}, want[string(o)]...) // newest first
	}
	require.NoError(t, f.s.InsertAudit(f.ctx, store.NewAuditEvent(f.bLive, by, "mcp", "trace", "x", t0).WithOutcome("FORBIDDEN")))
	for o, want := range want {
		got, _, err := f.s.ListAuditEvents(f.ctx, f.aLive.TenantID, store.AuditQuery{Outcome: o}, store.Page{})
		require.NoError(t, err)
		assert.Equal(t, want, ids(got, func(e store.AuditEvent) string { return e.ID }), o)
	}
}
