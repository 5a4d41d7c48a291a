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
	h.macs.New = func() any { return hmac.New(sha256.New, h.pepper) }
	return h, nil
}

// Hash is HMAC-SHA256(pepper, s).
func (h *Hasher) Hash(s string) []byte {
	return h.sum(s, nil)
}

func (h *Hasher) sum(s string, dst []byte) []byte {
	m := h.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(s))
	dst = m.Sum(dst)
	h.macs.Put(m)
	return dst
}

// Matches compares in constant time.
func (h *Hasher) Matches(s string, stored []byte) bool {
	var buf [sha256.Size]byte
	return hmac.Equal(h.sum(s, buf[:0]), stored)
}
