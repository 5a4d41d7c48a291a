package api_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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
	return storetest.PostgresBehindProxy(t, timeout)
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
	require.EqualValues(t, 200, e.Do("GET", "/v1/api/candidates", key, nil).Status)

	proxy.Stall()
	t.Run("key lookup", func(t *testing.T) {
		r := answered(t, func() apitest.Response { return e.Do("GET", "/v1/api/candidates", key, nil) })
		assert.EqualValues(t, 503, r.Status, string(r.Body))
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
			assert.EqualValues(t, 503, r.Status, c.method+" "+string(r.Body))
			assert.Equal(t, "UNAVAILABLE", r.Code())
			assert.NotEmpty(t, r.Header.Get("Retry-After"))
		}
	})
	proxy.Resume()
	r := answered(t, func() apitest.Response { return e.Do("GET", "/v1/api/candidates", key, nil) })
	assert.EqualValues(t, 200, r.Status, "the pool recovers once the database answers: %s", r.Body)
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

// Creates racing for the last places under the cap must not pass it.
func TestActiveKeyCapHoldsUnderConcurrentCreates(t *testing.T) {
	st := storetest.OpenPostgres(t)
	e := apitest.New(t, st, apitest.Options{})
	e.Tenant("acme")
	ks := &api.KeyService{Store: st, Hasher: e.Hasher, Now: time.Now, MaxActive: 5}
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ks.Create(context.Background(), api.NewKey{TenantID: "acme", RecruiterID: "acme_recruiter",
				Name: fmt.Sprintf("racer %d", i), Environment: auth.Test}, api.Actor{Kind: store.ActorOperator, ID: "test"})
			if err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	n, err := st.CountActiveAPIKeys(context.Background(), "acme", time.Now())
	require.NoError(t, err)
	assert.Equal(t, 5, n, "active keys after 16 concurrent creates against a cap of 5")
	assert.Equal(t, int32(5), ok.Load())
}

// Referees of one request answering at the same moment all get through:
// the server retries the version conflict instead of answering 409.
func TestRefereesAnsweringAtOnceAllSucceed(t *testing.T) {
	e := apitest.New(t, storetest.OpenPostgres(t), apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	var refs []any
	for i := range 5 {
		refs = append(refs, refereeIn(fmt.Sprintf("Ref %d", i), fmt.Sprintf("ref%d@example.com", i), "peer"))
	}
	ref := expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
		"candidate": map[string]any{"name": "Cara"}, "referees": refs, "sendInvitations": true}), 201)
	links := invitationLinks(t, e, ref)
	require.Len(t, links, 5)
	var wg sync.WaitGroup
	statuses := make(chan int, len(links))
	start := make(chan struct{})
	for _, path := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses <- e.Do("POST", path+"/response", "", refereeAnswers([4]int{5, 4, 4, 5}, "Calm", "Delegation")).Status
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		assert.Equal(t, 200, s)
	}
	got := expect(t, e.Do("GET", "/v1/api/references/"+jstr(ref, "id"), key, nil), 200)
	for _, r := range got["referees"].([]any) {
		assert.Equal(t, "responded", jstr(r, "state"))
	}
}
