package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"sync"
)

// MinPepperLen is the shortest API_KEY_PEPPER the server accepts.
const MinPepperLen = 32

// Hasher computes the keyed hash stored in place of a token. Without the
// pepper a stolen database cannot be used to test guesses offline.
type Hasher struct {
	pepper []byte
	// macs reuses keyed HMAC states: building one costs more than hashing
	// a token, and every request hashes one.
	macs sync.Pool
}

// NewHasher refuses peppers too short to be a secret.
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) < MinPepperLen {
		return nil, errors.New("auth: the pepper must be at least 32 bytes")
	}
	h := &Hasher{pepper: append([]byte(nil), pepper...)}
	h.macs.New = func() any { return &mac{h: hmac.New(sha256.New, h.pepper)} }
	return h, nil
}

// mac is a keyed HMAC state with buffers for its input and sum, which
// the hash.Hash interface would otherwise make escape on every call.
type mac struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// Hash is HMAC-SHA256(pepper, s).
func (h *Hasher) Hash(s string) []byte {
	var out []byte
	h.with(s, func(sum []byte) { out = append([]byte(nil), sum...) })
	return out
}

// with passes f the HMAC of s, valid only during the call.
func (h *Hasher) with(s string, f func(sum []byte)) {
	m := h.macs.Get().(*mac)
	m.h.Reset()
	m.in = append(m.in[:0], s...)
	m.h.Write(m.in)
	f(m.h.Sum(m.sum[:0]))
	if cap(m.in) > 1<<10 {
		m.in = nil // a rare long input is not kept for every later call
	}
	h.macs.Put(m)
}

// Matches compares in constant time.
func (h *Hasher) Matches(s string, stored []byte) bool {
	var ok bool
	h.with(s, func(sum []byte) { ok = hmac.Equal(sum, stored) })
	return ok
}
