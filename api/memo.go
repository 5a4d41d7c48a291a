package api

import "sync"

// memo remembers values derived from what requests carry (a client
// address, a key and its limit), so the path every request takes does not
// rebuild them: a keyed hash and a few strings cost more than the lookup.
// derive must be a pure function of the key. It is bounded: past memoMax
// entries it starts over, so keys that vary without end (addresses)
// cannot grow it.
type memo[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

const memoMax = 4096

func (c *memo[K, V]) get(k K, derive func(K) V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = derive(k)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= memoMax {
		c.m = make(map[K]V)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v
}
