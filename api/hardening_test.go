package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/workers"
)

// Input PostgreSQL cannot store must be refused the same way on both
// backends, as INVALID_INPUT, never as a 503.
func TestInputBothBackendsRefuseAlike(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.Key("acme", auth.Test)

		r := e.Do("POST", "/v1/api/candidates", key, `{"name":"A\u0000B"}`)
		assert.EqualValues(t, 422, r.Status, string(r.Body))
		assert.Equal(t, "INVALID_INPUT", r.Code())
		assert.Contains(t, string(r.Body), "body.name")

		r = e.Do("GET", "/v1/api/candidates?q=a%00", key, nil)
		assert.EqualValues(t, 422, r.Status, string(r.Body))
		assert.Contains(t, string(r.Body), "query.q")

		r = e.Do("POST", "/v1/api/candidates", key, `{"name":"ok"}`, "Idempotency-Key", strings.Repeat("k", 8000))
		assert.EqualValues(t, 422, r.Status, string(r.Body))
		assert.Contains(t, string(r.Body), "Idempotency-Key")
		r = e.Do("POST", "/v1/api/candidates", key, `{"name":"ok"}`, "Idempotency-Key", strings.Repeat("k", 255))
		assert.EqualValues(t, 201, r.Status, string(r.Body))

		rows, _, err := st.ListCandidates(context.Background(), store.Tenancy{TenantID: "acme", Environment: auth.Test}, store.CandidateFilter{}, store.Page{})
		require.NoError(t, err)
		assert.Len(t, rows, 1, "nothing written by the refused calls")
	})
}

// failingReferences makes the worker's read fail the way a lost database
// connection does, with internals in the error text.
type failingReferences struct{ store.Store }

func (f failingReferences) GetReference(context.Context, store.Tenancy, string) (store.ReferenceRequest, error) {
	return store.ReferenceRequest{}, errors.Join(store.ErrUnavailable, errors.New("dial tcp 10.1.2.3:5432: user=veref database=prod"))
}

func TestValuationErrorsDoNotLeakInternals(t *testing.T) {
	e := apitest.New(t, openSQLite(t), apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	ten := store.Tenancy{TenantID: "acme", Environment: auth.Test}
	v := store.Valuation{ID: store.NewID("val"), TenantID: "acme", Environment: auth.Test, RequestID: "ref_x",
		Status: store.ValuationQueued}
	// A request and a queued valuation, written directly: the point is the worker.
	cand := e.Do("POST", "/v1/api/references", key, map[string]any{"candidate": map[string]any{"name": "Dana"},
		"referees": []any{map[string]any{"name": "W", "email": "w@example.com", "relationship": "manager"}}})
	require.EqualValues(t, 201, cand.Status, string(cand.Body))
	v.RequestID = cand.JSON()["id"].(string)
	require.NoError(t, e.Store.InsertValuation(context.Background(), ten, v))

	w := &workers.ValuationWorker{Store: failingReferences{e.Store}}
	did, err := w.RunOnce(context.Background())
	require.NoError(t, err)
	require.True(t, did)
	r := e.Do("GET", "/v1/api/valuations/"+v.ID, key, nil)
	require.EqualValues(t, 200, r.Status)
	assert.Equal(t, "queued", r.JSON()["status"], "retried later")
	assert.Equal(t, "storage is unavailable; try again shortly", r.JSON()["error"])
	assert.NotContains(t, string(r.Body), "10.1.2.3")
}

// An explicit null is not an empty list: required arrays refuse it.
func TestNullArraysAreRefused(t *testing.T) {
	e := apitest.New(t, openSQLite(t), apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	r := e.Do("POST", "/v1/api/references", key, `{"referees": null, "candidate": {"name": "X"}}`)
	assert.EqualValues(t, 422, r.Status, string(r.Body))
	assert.Contains(t, string(r.Body), "body.referees")
	rows, _, err := e.Store.ListCandidates(context.Background(), store.Tenancy{TenantID: "acme", Environment: auth.Test}, store.CandidateFilter{}, store.Page{})
	require.NoError(t, err)
	assert.Empty(t, rows, "no candidate was left behind")
}

// A request whose answers are all text has nothing to score: refused up
// front rather than queued to fail.
func TestValuationOfTextOnlyAnswersIsRefused(t *testing.T) {
	e := apitest.New(t, openSQLite(t), apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	r := e.Do("POST", "/v1/api/references", key, map[string]any{"candidate": map[string]any{"name": "Dana"},
		"questions":       []any{map[string]any{"text": "What stands out?", "kind": "text"}},
		"referees":        []any{map[string]any{"name": "W", "email": "w@example.com", "relationship": "manager"}},
		"sendInvitations": true})
	require.EqualValues(t, 201, r.Status, string(r.Body))
	var started struct {
		ID    string
		Links []struct{ URL string } `json:"testInvitationLinks"`
	}
	r.Decode(t, &started)
	link := strings.TrimPrefix(started.Links[0].URL, e.URL)
	a := e.Do("POST", link+"/response", "", map[string]any{"answers": []any{map[string]any{"questionId": "q1", "text": "Calm."}}})
	require.EqualValues(t, 200, a.Status, string(a.Body))

	v := e.Do("POST", "/v1/api/references/"+started.ID+"/valuations", key, nil)
	assert.EqualValues(t, 409, v.Status, string(v.Body))
	assert.Contains(t, v.JSON()["detail"], "no ratings")
}

// A replayed answer does not hand out a link token again: links are shown
// once, and only their keyed hash is kept.
func TestIdempotentReplayRedactsLinkTokens(t *testing.T) {
	e := apitest.New(t, openSQLite(t), apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	body := map[string]any{"candidate": map[string]any{"name": "Dana"}, "sendInvitations": true,
		"referees": []any{map[string]any{"name": "W", "email": "w@example.com", "relationship": "manager"}}}
	first := e.Do("POST", "/v1/api/references", key, body, "Idempotency-Key", "k-1")
	require.EqualValues(t, 201, first.Status)
	again := e.Do("POST", "/v1/api/references", key, body, "Idempotency-Key", "k-1")
	require.EqualValues(t, 201, again.Status)
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	assert.Equal(t, first.JSON()["id"], again.JSON()["id"])
	assert.Regexp(t, `/v1/referee/[0-9A-Za-z]{32}"`, string(first.Body))
	assert.Contains(t, string(again.Body), "/v1/referee/[redacted]")
	assert.NotRegexp(t, `/v1/referee/[0-9A-Za-z]{32}"`, string(again.Body))
}
