package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
)

// MinPepperLen is the shortest API_KEY_PEPPER the server accepts.
const MinPepperLen = 32

// Hasher computes the keyed hash stored in place of a token. Without the
// pepper a stolen database cannot be used to test guesses offline.
type Hasher struct{ pepper []byte }

// NewHasher refuses peppers too short to be a secret.
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) < MinPepperLen {
		return nil, errors.New("auth: the pepper must be at least 32 bytes")
	}
	return &Hasher{pepper: append([]byte(nil), pepper...)}, nil
}

// Hash is HMAC-SHA256(pepper, s).
func (h *Hasher) Hash(s string) []byte {
	m := hmac.New(sha256.New, h.pepper)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// Matches compares in constant time.
func (h *Hasher) Matches(s string, stored []byte) bool {
	return hmac.Equal(h.Hash(s), stored)
}
