package auth

import (
	"sync"
	"time"
)

// KeyEvents is how storage tells a KeyCache that stored keys changed. The
// store calls it (a PostgreSQL LISTEN loop, SQLite's update hook); the cache
// implements it.
type KeyEvents interface {
	// Evict forgets one prefix; the next request with it reads storage.
	Evict(prefix string)
	// SetLive reports whether changes are being heard. While not live the
	// cache is empty and bypassed: a change nobody hears must not leave a
	// revoked key usable. Going not live also ends any lease.
	SetLive(live bool)
	// Lease bounds how long the cache may be used without hearing from its
	// source again: from the first call (until going not live) entries are
	// answered only before until, which later calls move. A source whose
	// feed can fall behind uses it so that an instance that stopped hearing
	// changes stops answering from memory by itself, in a bounded time
	// that writers can wait out (see store/postgres/keyevents.go).
	Lease(until time.Time)
}

// DefaultKeyCacheTTL is the backstop maximum age of a cached verification.
const DefaultKeyCacheTTL = 30 * time.Second

// maxCachedKeys bounds memory. Only verified keys are cached, so reaching it
// means that many distinct live keys are in use; past it keys are simply
// looked up every time.
const maxCachedKeys = 100_000

// KeyCache remembers successful verifications by prefix so that a warm key
// is checked without a storage round trip. It never holds unknown prefixes or
// refused keys (nobody can fill it with guesses), and it is only used while
// its KeyEvents source is live, so revocation stays immediate.
type KeyCache struct {
	ttl       time.Duration
	now       func() time.Time
	realClock bool // now is the real clock: the lease check reuses its reading

	mu      sync.RWMutex
	live    bool
	leased  bool      // Lease was called since the cache last went not live
	until   time.Time // with leased: not used from then on (real clock, not now)
	gen     uint64    // bumped by every eviction; a lookup older than the bump is not cached
	entries map[string]cachedKey
}

type cachedKey struct {
	rec      KeyRecord
	loadedAt time.Time
}

// NewKeyCache returns a cache that holds entries at most ttl (0 means
// DefaultKeyCacheTTL) by the clock now (nil, the real clock, is cheapest:
// a warm request reads it once). It starts not live: nothing is cached
// until its source calls SetLive(true).
func NewKeyCache(ttl time.Duration, now func() time.Time) *KeyCache {
	if ttl <= 0 {
		ttl = DefaultKeyCacheTTL
	}
	c := &KeyCache{ttl: ttl, now: now, entries: map[string]cachedKey{}}
	if now == nil {
		// One clock reading per request serves both the TTL and the lease.
		c.now, c.realClock = time.Now, true
	}
	return c
}

// get returns the cached record for prefix, if live and younger than the TTL.
func (c *KeyCache) get(prefix string) (KeyRecord, bool) {
	c.mu.RLock()
	now := c.now()
	e, ok := c.entries[prefix]
	real := now
	if c.leased && !c.realClock {
		real = time.Now()
	}
	usable := c.usableAt(real)
	c.mu.RUnlock()
	if !ok || !usable || now.Sub(e.loadedAt) >= c.ttl {
		return KeyRecord{}, false
	}
	return e.rec, true
}

// begin is taken before a storage lookup whose result may be cached.
func (c *KeyCache) begin() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches rec unless something was evicted since begin returned gen: the
// lookup may have read the row before a change that was already announced.
func (c *KeyCache) put(gen uint64, rec KeyRecord, loadedAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	if _, ok := c.entries[rec.Prefix]; !ok && len(c.entries) >= maxCachedKeys {
		return
	}
	c.entries[rec.Prefix] = cachedKey{rec: rec, loadedAt: loadedAt}
}

// Evict implements KeyEvents.
func (c *KeyCache) Evict(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if prefix == "" {
		clear(c.entries)
		return
	}
	delete(c.entries, prefix)
}

// SetLive implements KeyEvents. Both directions clear: going down because
// changes may be missed from now on, coming up because some may have been.
func (c *KeyCache) SetLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = live
	if !live {
		c.leased, c.until = false, time.Time{}
	}
	clear(c.entries)
}

// Lease implements KeyEvents. It does not clear: entries kept through a
// lapse were evicted by every change the source had heard of by the time
// it renewed the lease.
func (c *KeyCache) Lease(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leased = true
	if until.After(c.until) {
		c.until = until
	}
}

// usableAt is live and, when leased, inside the lease at real, a reading
// of the real clock: the lease is a promise to other processes, so a test's
// clock cannot stretch it. c.mu is held.
func (c *KeyCache) usableAt(real time.Time) bool {
	return c.live && (!c.leased || real.Before(c.until))
}

// Live reports whether the cache is in use: live, and inside its lease.
func (c *KeyCache) Live() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.usableAt(time.Now())
}

// Len is the number of cached keys, for tests and metrics.
func (c *KeyCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
