package auth

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/verefwork/veref/problem"
)

// countingKeys is a key table that counts lookups, so tests see whether the
// cache answered or storage did. during runs inside a lookup.
type countingKeys struct {
	mu      sync.Mutex
	recs    map[string]KeyRecord
	lookups int
	during  func()
	fresh   map[string]KeyRecord // what FreshKeyByPrefix sees, if set
}

func (c *countingKeys) KeyByPrefix(_ context.Context, prefix string) (KeyRecord, error) {
	c.mu.Lock()
	c.lookups++
	rec, ok := c.recs[prefix]
	during := c.during
	c.mu.Unlock()
	if during != nil {
		during()
	}
	if !ok {
		return KeyRecord{}, ErrKeyNotFound
	}
	return rec, nil
}

func (c *countingKeys) set(rec KeyRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs[rec.Prefix] = rec
}

func (c *countingKeys) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookups
}

type freshKeys struct{ *countingKeys }

func (f freshKeys) FreshKeyByPrefix(_ context.Context, prefix string) (KeyRecord, error) {
	rec, ok := f.fresh[prefix]
	if !ok {
		return KeyRecord{}, ErrKeyNotFound
	}
	return rec, nil
}

type cacheFixture struct {
	keys  *countingKeys
	cache *KeyCache
	authn *Authenticator
	now   time.Time
	h     *Hasher
}

func newCacheFixture(t *testing.T) *cacheFixture {
	h, err := NewHasher([]byte(strings.Repeat("c", 32)))
	require.NoError(t, err)
	f := &cacheFixture{keys: &countingKeys{recs: map[string]KeyRecord{}}, h: h,
		now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	f.cache = NewKeyCache(30*time.Second, clock)
	f.cache.SetLive(true)
	f.authn = &Authenticator{Keys: f.keys, Hasher: h, Now: clock, Cache: f.cache}
	return f
}

func (f *cacheFixture) key(t *testing.T, mut func(*KeyRecord)) (string, KeyRecord) {
	tok, err := NewToken(Live)
	require.NoError(t, err)
	rec := KeyRecord{ID: "key_" + tok.Prefix, TenantID: "acme", Prefix: tok.Prefix, Environment: Live, Hash: f.h.Hash(tok.String())}
	if mut != nil {
		mut(&rec)
	}
	f.keys.set(rec)
	return tok.String(), rec
}

func (f *cacheFixture) code(token string) string {
	_, err := f.authn.Authenticate(context.Background(), token)
	if err == nil {
		return "ok"
	}
	return string(err.(*Error).Code)
}

func TestKeyCacheAnswersWarmKeysWithoutStorage(t *testing.T) {
	f := newCacheFixture(t)
	tok, _ := f.key(t, nil)
	for range 5 {
		assert.Equal(t, "ok", f.code(tok))
	}
	assert.Equal(t, 1, f.keys.count())
	assert.Equal(t, 1, f.cache.Len())
}

func TestKeyCacheNeverHoldsRefusals(t *testing.T) {
	f := newCacheFixture(t)
	good, _ := f.key(t, nil)
	revoked, _ := f.key(t, func(r *KeyRecord) { at := f.now.Add(-time.Hour); r.RevokedAt = &at })
	unknown, err := NewToken(Live)
	require.NoError(t, err)
	// Right prefix, wrong secret: a guess must not warm the cache for the
	// real key's prefix either.
	wrong := good[:len(good)-SecretLen] + unknown.String()[len(good)-SecretLen:]
	for range 3 {
		assert.EqualValues(t, problem.AuthRevokedKey, f.code(revoked))
		assert.EqualValues(t, problem.AuthInvalidKey, f.code(unknown.String()))
		assert.NotEqual(t, "ok", f.code(wrong))
	}
	assert.Equal(t, 0, f.cache.Len())
	assert.Equal(t, 6, f.keys.count(), "checksum failures never reach storage; the rest always do")
}

func TestKeyCacheEvictionSendsTheNextRequestToStorage(t *testing.T) {
	f := newCacheFixture(t)
	tok, rec := f.key(t, nil)
	require.Equal(t, "ok", f.code(tok))
	at := f.now
	rec.RevokedAt = &at
	f.keys.set(rec)
	assert.Equal(t, "ok", f.code(tok), "the change has not been announced, so the cache still answers")
	f.cache.Evict(rec.Prefix)
	assert.EqualValues(t, problem.AuthRevokedKey, f.code(tok))
	assert.Equal(t, 0, f.cache.Len())
}

func TestKeyCacheDoesNotKeepALookupOverlappingAnEviction(t *testing.T) {
	f := newCacheFixture(t)
	tok, rec := f.key(t, nil)
	// The row is read, then changed and announced before the reader caches it.
	f.keys.during = func() { f.cache.Evict(rec.Prefix) }
	require.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 0, f.cache.Len())
	f.keys.during = nil
	require.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 1, f.cache.Len())
}

func TestKeyCacheIsBypassedWhileNotLive(t *testing.T) {
	f := newCacheFixture(t)
	tok, _ := f.key(t, nil)
	require.Equal(t, "ok", f.code(tok))
	require.Equal(t, 1, f.cache.Len())
	f.cache.SetLive(false)
	assert.False(t, f.cache.Live())
	assert.Equal(t, 0, f.cache.Len(), "going down clears")
	for range 3 {
		assert.Equal(t, "ok", f.code(tok))
	}
	assert.Equal(t, 4, f.keys.count(), "every request went to storage")
	assert.Equal(t, 0, f.cache.Len(), "nothing cached while not live")
	f.cache.SetLive(true)
	require.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 1, f.cache.Len())
}

// A lease that ran out stops the cache answering without clearing it; a
// renewal brings the same entries back, and going not live ends the lease.
func TestKeyCacheIsBypassedOutsideItsLease(t *testing.T) {
	f := newCacheFixture(t)
	tok, _ := f.key(t, nil)
	require.Equal(t, "ok", f.code(tok))
	f.cache.Lease(time.Now().Add(-time.Nanosecond)) // already over
	assert.False(t, f.cache.Live())
	require.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 2, f.keys.count(), "outside the lease storage answers")
	f.cache.Lease(time.Now().Add(time.Hour))
	assert.True(t, f.cache.Live())
	require.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 2, f.keys.count(), "a renewed lease answers from the cache again")
	f.cache.Lease(time.Now().Add(-time.Hour))
	assert.True(t, f.cache.Live(), "a lease only moves forward")

	f.cache.SetLive(false)
	f.cache.SetLive(true)
	require.Equal(t, "ok", f.code(tok))
	require.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 3, f.keys.count(), "after going not live there is no lease until the next Lease")
}

// On the real clock (nil) one reading serves the TTL and the lease.
func TestKeyCacheLeaseOnTheRealClock(t *testing.T) {
	c := NewKeyCache(0, nil)
	c.SetLive(true)
	rec := KeyRecord{Prefix: "p"}
	c.put(c.begin(), rec, time.Now())
	_, ok := c.get("p")
	require.True(t, ok)
	c.Lease(time.Now().Add(-time.Nanosecond))
	_, ok = c.get("p")
	assert.False(t, ok, "outside the lease")
	c.Lease(time.Now().Add(time.Hour))
	_, ok = c.get("p")
	assert.True(t, ok)
}

func TestKeyCacheChecksExpiryOnEveryRequest(t *testing.T) {
	f := newCacheFixture(t)
	exp := f.now.Add(time.Second)
	tok, _ := f.key(t, func(r *KeyRecord) { r.ExpiresAt = &exp })
	require.Equal(t, "ok", f.code(tok))
	f.now = exp
	assert.EqualValues(t, problem.AuthExpiredKey, f.code(tok))
	assert.Equal(t, 1, f.keys.count(), "expiry came from the cached record")
}

func TestKeyCacheMaximumAge(t *testing.T) {
	f := newCacheFixture(t)
	tok, _ := f.key(t, nil)
	require.Equal(t, "ok", f.code(tok))
	f.now = f.now.Add(29 * time.Second)
	require.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 1, f.keys.count())
	f.now = f.now.Add(time.Second)
	require.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 2, f.keys.count(), "an entry as old as the TTL is read again")
}

func TestKeyCacheCachesOnlyWhatAFreshReadConfirms(t *testing.T) {
	f := newCacheFixture(t)
	tok, rec := f.key(t, nil)
	revoked := rec
	at := f.now
	revoked.RevokedAt = &at
	fk := freshKeys{f.keys}
	fk.fresh = map[string]KeyRecord{rec.Prefix: revoked}
	f.authn.Keys = fk
	// The plain read is a snapshot from before the revocation committed: it
	// may answer this request, but must not be remembered.
	assert.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 0, f.cache.Len())
	fk.fresh[rec.Prefix] = rec
	assert.Equal(t, "ok", f.code(tok))
	assert.Equal(t, 1, f.cache.Len())
}

func TestKeyCacheEmptyPrefixClearsAll(t *testing.T) {
	f := newCacheFixture(t)
	a, _ := f.key(t, nil)
	b, _ := f.key(t, nil)
	require.Equal(t, "ok", f.code(a))
	require.Equal(t, "ok", f.code(b))
	require.Equal(t, 2, f.cache.Len())
	f.cache.Evict("")
	assert.Equal(t, 0, f.cache.Len())
}
