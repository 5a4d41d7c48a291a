package api_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/storetest"
)

// stalledPostgres opens a store whose connections go through a proxy the
// test can stall, like a paused or partitioned database.
func stalledPostgres(t *testing.T, timeout time.Duration) (*postgres.Store, *storetest.StallProxy, string) {
	t.Helper()
	dsn := storetest.PostgresURL(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	proxy := storetest.NewStallProxy(t, u.Host)
	st, err := postgres.OpenWithTimeout(context.Background(), storetest.ThroughProxy(t, dsn, proxy.Addr), timeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(context.Background()))
	return st, proxy, dsn
}

// keysElsewhere looks keys up in a store the proxy does not stall, so the
// request gets past authentication and meets the stall in its operation.
type keysElsewhere struct {
	store.Store
	keys store.Store
}

func (k keysElsewhere) KeyByPrefix(ctx context.Context, prefix string) (auth.KeyRecord, error) {
	return k.keys.KeyByPrefix(ctx, prefix)
}

// answered runs do and fails the test if it never returns: without
// deadlines, a request waits for as long as the database is stalled.
func answered(t *testing.T, do func() apitest.Response) apitest.Response {
	t.Helper()
	ch := make(chan apitest.Response, 1)
	go func() { ch <- do() }()
	select {
	case r := <-ch:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no answer while the database was stalled")
		return apitest.Response{}
	}
}

func TestStalledDatabaseAnswers503WithRetryAfter(t *testing.T) {
	st, proxy, dsn := stalledPostgres(t, 300*time.Millisecond)

	var one string
	require.NoError(t, st.Pool().QueryRow(context.Background(), "SHOW statement_timeout").Scan(&one))
	assert.Equal(t, "300ms", one, "the server enforces the deadline too")
	require.NoError(t, st.Pool().QueryRow(context.Background(), "SHOW lock_timeout").Scan(&one))
	assert.Equal(t, "300ms", one)

	e := apitest.New(t, st, apitest.Options{AuthTimeout: 200 * time.Millisecond})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	require.Equal(t, 200, e.Do("GET", "/v1/api/candidates", key, nil).Status)

	proxy.Stall()
	t.Run("key lookup", func(t *testing.T) {
		r := answered(t, func() apitest.Response { return e.Do("GET", "/v1/api/candidates", key, nil) })
		assert.Equal(t, 503, r.Status, string(r.Body))
		assert.Equal(t, "UNAVAILABLE", r.Code())
		assert.NotEmpty(t, r.Header.Get("Retry-After"))
	})
	t.Run("operation", func(t *testing.T) {
		direct, err := postgres.Open(context.Background(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = direct.Close() })
		e2 := apitest.New(t, keysElsewhere{Store: st, keys: direct}, apitest.Options{})
		t.Cleanup(proxy.Resume) // before e2 flushes its usage rows
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/v1/api/candidates", ""},
			{"POST", "/v1/api/candidates", `{"name":"Ada"}`},
		} {
			r := answered(t, func() apitest.Response {
				var body any
				if c.body != "" {
					body = c.body
				}
				return e2.Do(c.method, c.path, key, body)
			})
			assert.Equal(t, 503, r.Status, c.method+" "+string(r.Body))
			assert.Equal(t, "UNAVAILABLE", r.Code())
			assert.NotEmpty(t, r.Header.Get("Retry-After"))
		}
	})
	proxy.Resume()
	r := answered(t, func() apitest.Response { return e.Do("GET", "/v1/api/candidates", key, nil) })
	assert.Equal(t, 200, r.Status, "the pool recovers once the database answers: %s", r.Body)
}
