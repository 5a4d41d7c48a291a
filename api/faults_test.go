package api_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
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

func TestAdvertisedURLsComeFromPublicURLOrTrustedProxies(t *testing.T) {
	challenge := func(e *apitest.Env, headers ...string) string {
		r := e.Do("GET", "/v1/api/me", "", nil, headers...)
		require.Equal(t, 401, r.Status)
		return r.Header.Get("WWW-Authenticate")
	}
	forged := []string{"Host", "evil.test", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.test"}

	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{PublicURL: "https://api.veref.test/"})
	assert.Contains(t, challenge(e, forged...), `resource_metadata="https://api.veref.test/.well-known/`)

	// No public URL and no trusted proxy: forwarded headers are ignored.
	e = apitest.New(t, storetest.OpenSQLite(t), apitest.Options{})
	c := challenge(e, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.test")
	assert.Contains(t, c, `resource_metadata="http://127.0.0.1:`)
	assert.NotContains(t, c, "evil.test")

	// The test client connects from 127.0.0.1: trusted, its headers count.
	trusted, err := api.ParseTrustedProxies("127.0.0.1/32")
	require.NoError(t, err)
	e = apitest.New(t, storetest.OpenSQLite(t), apitest.Options{Limits: api.Limits{ClientIP: api.ClientIP{Trusted: trusted}}})
	assert.Contains(t, challenge(e, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "api.example.com"),
		`resource_metadata="https://api.example.com/.well-known/`)
}

func TestUsageRowsHashTheClientTheTrustedProxyNames(t *testing.T) {
	trusted, err := api.ParseTrustedProxies("127.0.0.0/8")
	require.NoError(t, err)
	for _, c := range []struct {
		name    string
		proxies api.ClientIP
		same    bool
	}{{"trusted", api.ClientIP{Trusted: trusted}, false}, {"untrusted", api.ClientIP{}, true}} {
		t.Run(c.name, func(t *testing.T) {
			e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{Limits: api.Limits{ClientIP: c.proxies}})
			e.Tenant("acme")
			key := e.Key("acme", auth.Test)
			require.Equal(t, 200, e.Do("GET", "/v1/api/me", key, nil, "X-Forwarded-For", "198.51.100.1").Status)
			require.Equal(t, 200, e.Do("GET", "/v1/api/me", key, nil, "X-Forwarded-For", "198.51.100.2").Status)
			e.FlushUsage()
			p := e.Principal(key)
			rows, _, err := e.Store.ListUsage(context.Background(), "acme", p.KeyID, store.Page{})
			require.NoError(t, err)
			require.Len(t, rows, 2)
			assert.Equal(t, c.same, rows[0].IPHash == rows[1].IPHash,
				"two clients behind a trusted proxy are two callers; an untrusted peer's header changes nothing")
		})
	}
}
