package api_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/ratelimit"
	"github.com/verefwork/veref/ratelimit/redistest"
	"github.com/verefwork/veref/store"
)

func sharedLimiter(t *testing.T, url, prefix string) *ratelimit.Shared {
	rdb, err := ratelimit.NewRedisClient(url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	// A generous per-call timeout (the client's own cap): under a loaded
	// -race run a call can take long, and this test is about sharing, not
	// about the fallback.
	return &ratelimit.Shared{Redis: rdb, Prefix: prefix, Local: ratelimit.NewLocal(nil), Timeout: time.Second}
}

// Two instances over one database and one Redis: a burst spread over both
// is accepted exactly up to the key's limit, and both report the same
// remaining count.
func TestTwoInstancesShareOneLimitThroughRedis(t *testing.T) {
	url := redistest.URL(t)
	eachBackend(t, func(t *testing.T, st store.Store) {
		prefix := redistest.Prefix(t)
		la, lb := sharedLimiter(t, url, prefix), sharedLimiter(t, url, prefix)
		a := apitest.New(t, st, apitest.Options{Limits: api.Limits{Limiter: la}})
		b := apitest.New(t, st, apitest.Options{Limits: api.Limits{Limiter: lb}})
		a.Tenant("acme")
		key := a.KeyWith("acme", auth.Test, api.LimitsChange{RateLimit: rate(25, "hour")})

		var ok, limited atomic.Int32
		var wg sync.WaitGroup
		for i := range 60 {
			e := a
			if i%2 == 1 {
				e = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch e.Do("GET", "/v1/api/me", key, nil).Status {
				case 200:
					ok.Add(1)
				case 429:
					limited.Add(1)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(25), ok.Load(), "accepted across both instances == the limit")
		assert.Equal(t, int32(35), limited.Load())
		r := b.Do("GET", "/v1/api/me", key, nil)
		assert.Equal(t, 429, r.Status)
		assert.Regexp(t, `^"default";r=0;t=\d+$`, r.Header.Get("RateLimit"))
		assert.Zero(t, la.Fallbacks()+lb.Fallbacks(), "Redis answered every decision")
	})
}

// With Redis gone the server keeps answering, limiting in-process, and
// counts the fallbacks.
func TestRedisDownNeverFailsRequests(t *testing.T) {
	srv := redistest.Start(t)
	lim := sharedLimiter(t, srv.URL, redistest.Prefix(t))
	e := apitest.New(t, openSQLite(t), apitest.Options{Limits: api.Limits{Limiter: lim}})
	e.Tenant("acme")
	key := e.KeyWith("acme", auth.Test, api.LimitsChange{RateLimit: rate(3, "hour")})
	assert.Equal(t, 200, e.Do("GET", "/v1/api/me", key, nil).Status)

	srv.Stop()
	statuses := map[int]int{}
	for range 5 {
		statuses[e.Do("GET", "/v1/api/me", key, nil).Status]++
	}
	assert.Equal(t, map[int]int{200: 3, 429: 2}, statuses, "the in-process bucket (fresh) holds the limit meanwhile")
	assert.GreaterOrEqual(t, lim.Fallbacks(), uint64(5))
}
