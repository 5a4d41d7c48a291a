package api_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
)

func eachBackend(t *testing.T, f func(t *testing.T, st store.Store)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { f(t, b.Open(t)) })
	}
}

func TestEveryAuthenticationCode(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		var clock atomic.Int64 // nanoseconds the test has moved time forward
		now := func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
		e := apitest.New(t, st, apitest.Options{Now: now})
		e.Tenant("acme")
		good := e.Key("acme", auth.Test)
		ctx := context.Background()

		expiring, err := e.Keys.Create(ctx, api.NewKey{TenantID: "acme", RecruiterID: "acme_recruiter", Name: "short lived",
			Environment: auth.Test, ExpiresAt: ptr(now().Add(time.Hour))}, api.Actor{Kind: store.ActorOperator, ID: "t"})
		require.NoError(t, err)
		revoked := e.Key("acme", auth.Live)
		p := e.Principal(revoked)
		_, err = e.Keys.Revoke(ctx, "acme", p.KeyID, "leaked", api.Actor{Kind: store.ActorOperator, ID: "t"})
		require.NoError(t, err)
		unknown, _ := auth.NewToken(auth.Test)
		typo := []byte(good)
		typo[len(typo)-3] ^= 1

		cases := []struct {
			name    string
			headers []string
			status  int
			code    string
		}{
			{"none", nil, 401, string(problem.AuthMissing)},
			{"not a vrf token", []string{"Authorization", "Bearer eyJhbGciOi.x.y"}, 401, string(problem.AuthInvalidFormat)},
			{"basic scheme", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, string(problem.AuthInvalidFormat)},
			{"checksum typo", []string{"x-api-key", string(typo)}, 401, string(problem.AuthInvalidFormat)},
			{"headers disagree", []string{"Authorization", "Bearer " + good, "x-api-key", revoked}, 401, string(problem.AuthInvalidFormat)},
			{"unknown key", []string{"x-api-key", unknown.String()}, 401, string(problem.AuthInvalidKey)},
			{"revoked", []string{"Authorization", "Bearer " + revoked}, 401, string(problem.AuthRevokedKey)},
			{"bearer", []string{"Authorization", "Bearer " + good}, 200, ""},
			{"x-api-key", []string{"x-api-key", good}, 200, ""},
			{"both agree", []string{"Authorization", "Bearer " + good, "x-api-key", good}, 200, ""},
		}
		for _, c := range cases {
			r := e.Do("GET", "/v1/api/me", "", nil, c.headers...)
			assert.EqualValues(t, c.status, r.Status, c.name)
			if c.code != "" {
				assert.Equal(t, c.code, r.Code(), c.name)
				assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"), c.name)
				assert.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer", c.name)
				assert.NotEmpty(t, r.JSON()["detail"], c.name)
				assert.NotContains(t, string(r.Body), good[10:], "%s: a secret echoed back", c.name)
			}
		}

		r := e.Do("GET", "/v1/api/me", expiring.Plaintext, nil)
		require.EqualValues(t, 200, r.Status, "works before expiry")
		clock.Store(int64(time.Hour + time.Second))
		r = e.Do("GET", "/v1/api/me", expiring.Plaintext, nil)
		assert.EqualValues(t, 401, r.Status)
		assert.EqualValues(t, problem.AuthExpiredKey, r.Code(), "expiry takes effect on the next request")

		narrow := e.Key("acme", auth.Test, auth.ReportsRead)
		r = e.Do("GET", "/v1/api/candidates", narrow, nil)
		assert.EqualValues(t, 403, r.Status)
		assert.EqualValues(t, problem.ScopeMissing, r.Code())
		assert.Contains(t, r.JSON()["detail"], "candidates:read")
	})
}

func TestWhoamiAndEnvironments(t *testing.T) {
	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{})
	e.Tenant("acme")
	for _, env := range []auth.Environment{auth.Test, auth.Live} {
		key := e.Key("acme", env, auth.CandidatesRead, auth.ReportsWrite)
		r := e.Do("GET", "/v1/api/me", key, nil)
		require.EqualValues(t, 200, r.Status)
		var me struct {
			TenantID, RecruiterID, Environment, KeyID, KeyPrefix string
			Scopes                                               []string
		}
		r.Decode(t, &me)
		p := e.Principal(key)
		assert.Equal(t, "acme", me.TenantID)
		assert.Equal(t, "acme_recruiter", me.RecruiterID)
		assert.Equal(t, string(env), me.Environment)
		assert.Equal(t, p.KeyID, me.KeyID)
		assert.Equal(t, strings.Split(key, "_")[2], me.KeyPrefix)
		assert.Equal(t, []string{"reports:write", "candidates:read"}, me.Scopes)
	}
	// The same name in the other environment is a clash: names are unique per tenant.
	r := e.Do("GET", "/v1/api/nothing-here", e.Key("acme", auth.Test), nil)
	assert.EqualValues(t, 404, r.Status)
	assert.Equal(t, "NOT_FOUND", r.Code())
	r = e.Do("GET", "/v1/api/nothing-here", "", nil)
	assert.EqualValues(t, 401, r.Status, "unknown paths do not answer before authentication")
}

func TestUsageRowsMatchTheCallsMade(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.Key("acme", auth.Test, auth.CandidatesRead)
		other := e.Key("acme", auth.Live)
		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		r := e.Do("GET", "/v1/api/me", key, nil, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		require.EqualValues(t, 200, r.Status)
		assert.Equal(t, traceID, r.Header.Get("X-Trace-Id"))
		for i := 0; i < 4; i++ {
			e.Do("GET", "/v1/api/candidates", key, nil)
		}
		e.Do("GET", "/v1/api/candidates/cand_missing", key, nil)
		e.Do("POST", "/v1/api/candidates", key, map[string]any{"name": "x"}) // 403: no write scope
		e.Do("GET", "/v1/api/me", other, nil)
		e.Do("GET", "/v1/api/me", "", nil) // unauthenticated: no row
		e.FlushUsage()

		p := e.Principal(key)
		rows, _, err := st.ListUsage(context.Background(), "acme", p.KeyID, store.Page{Limit: 100})
		require.NoError(t, err)
		require.Len(t, rows, 7)
		byEndpoint := map[string][]int{}
		for _, u := range rows {
			byEndpoint[u.Endpoint] = append(byEndpoint[u.Endpoint], u.Status)
			assert.Equal(t, auth.Test, u.Environment)
			assert.EqualValues(t, "rest", u.Surface)
			assert.Len(t, u.IPHash, 32)
			assert.NotContains(t, u.IPHash, "127.0.0.1")
			assert.GreaterOrEqual(t, u.DurationMS, 0.0)
		}
		assert.Equal(t, []int{200}, byEndpoint["GET /v1/api/me"])
		assert.Len(t, byEndpoint["GET /v1/api/candidates"], 4)
		assert.Equal(t, []int{404}, byEndpoint["GET /v1/api/candidates/{id}"])
		assert.Equal(t, []int{403}, byEndpoint["POST /v1/api/candidates"])
		var traced int
		for _, u := range rows {
			if u.TraceID == traceID {
				traced++
			}
		}
		assert.Equal(t, 1, traced)

		k, err := st.GetAPIKey(context.Background(), "acme", p.KeyID)
		require.NoError(t, err)
		require.NotNil(t, k.LastUsedAt)
		assert.WithinDuration(t, time.Now(), *k.LastUsedAt, time.Minute)
	})
}

func TestUsageWriterNeverDropsRows(t *testing.T) {
	st := storetest.OpenSQLite(t)
	e := apitest.New(t, st, apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	p := e.Principal(key)
	w := api.NewUsageWriter(st, zerologDiscard(), time.Hour) // only Close flushes
	for i := 0; i < 1234; i++ {
		w.Record(store.Usage{ID: store.NewID("use"), KeyID: p.KeyID, TenantID: "acme", Environment: auth.Test,
			Surface: "rest", Endpoint: "GET /x", Method: "GET", Status: 200, At: time.Now()})
	}
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, 0, w.Pending())
	var n int
	page := store.Page{Limit: 200}
	for {
		rows, next, err := st.ListUsage(context.Background(), "acme", p.KeyID, page)
		require.NoError(t, err)
		n += len(rows)
		if next == "" {
			break
		}
		page.Cursor = next
	}
	assert.Equal(t, 1234, n)
}

func ptr[T any](v T) *T { return &v }

// A row already written (a batch retried after its commit was lost) must not
// block the rows after it.
func TestUsageRetryOfAWrittenRowDoesNotBlock(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		p := e.Principal(e.Key("acme", auth.Test))
		row := func(id string) store.Usage {
			return store.Usage{ID: id, KeyID: p.KeyID, TenantID: "acme", Environment: auth.Test, Surface: "rest",
				Endpoint: "GET /x", Method: "GET", Status: 200, At: time.Now()}
		}
		first := row(store.NewID("use"))
		require.NoError(t, st.InsertUsage(context.Background(), []store.Usage{first}))
		w := api.NewUsageWriter(st, zerologDiscard(), time.Hour)
		w.Record(first)
		for i := 0; i < 10; i++ {
			w.Record(row(store.NewID("use")))
		}
		require.NoError(t, w.Close(context.Background()))
		rows, _, err := st.ListUsage(context.Background(), "acme", p.KeyID, store.Page{Limit: 100})
		require.NoError(t, err)
		assert.Len(t, rows, 11)
	})
}
