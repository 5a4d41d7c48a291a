// Package auth holds what identifies a caller: the API-key token format, the
// keyed hash stored in place of a token, the scope catalogue and policies, and
// the Principal that every surface passes down. It imports the standard
// library only, so every other package can depend on it.
package auth

import (
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/verefwork/veref/problem"
)

// Environment separates live data from test data. A key belongs to exactly one.
type Environment string

const (
	Live Environment = "live"
	Test Environment = "test"
)

// Valid reports whether e is one of the two environments.
func (e Environment) Valid() bool { return e == Live || e == Test }

const (
	tokenMagic     = "vrf"
	PrefixLen      = 12
	SecretLen      = 40
	checksumLen    = 6 // base62 of a CRC32 needs at most 6 characters
	base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Token is a parsed API key. Prefix is public and safe to log; Secret is not.
type Token struct {
	Env    Environment
	Prefix string
	Secret string
	raw    string
}

// String returns the full token. Only key creation should ever need it.
func (t Token) String() string { return t.raw }

// Redacted is the form that may appear in logs and UIs.
func (t Token) Redacted() string {
	return fmt.Sprintf("%s_%s_%s_…", tokenMagic, t.Env, t.Prefix)
}

// NewToken returns a fresh random token for env. The checksum covers the whole
// token body, so a typo anywhere is refused before any storage lookup.
func NewToken(env Environment) (Token, error) {
	if !env.Valid() {
		return Token{}, fmt.Errorf("auth: unknown environment %q", env)
	}
	prefix, err := randomBase62(PrefixLen)
	if err != nil {
		return Token{}, err
	}
	body, err := randomBase62(SecretLen - checksumLen)
	if err != nil {
		return Token{}, err
	}
	head := tokenMagic + "_" + string(env) + "_" + prefix + "_" + body
	raw := head + checksum(head)
	return Token{Env: env, Prefix: prefix, Secret: body + checksum(head), raw: raw}, nil
}

// ParseToken checks the shape and checksum of s without touching storage.
// Its errors are AUTH_INVALID_FORMAT errors that say what is wrong, never
// echoing the secret.
func ParseToken(s string) (Token, error) {
	bad := func(detail string) (Token, error) {
		return Token{}, &Error{Code: problem.AuthInvalidFormat, Detail: detail,
			Hint: "API keys look like vrf_live_<12 characters>_<40 characters> or vrf_test_…; copy the whole key as it was shown at creation"}
	}
	const want = len(tokenMagic) + 1 + 4 + 1 + PrefixLen + 1 + SecretLen
	if !strings.HasPrefix(s, tokenMagic+"_") {
		return bad("the credential is not a Veref API key")
	}
	if len(s) != want {
		return bad(fmt.Sprintf("an API key is %d characters long, this one is %d", want, len(s)))
	}
	// Every request parses its key, so the parts are cut out of s, not
	// split into a new slice.
	envPart, rest, _ := strings.Cut(s[len(tokenMagic)+1:], "_")
	prefix, secret, ok := strings.Cut(rest, "_")
	if !ok || strings.Contains(secret, "_") {
		return bad("an API key has four parts separated by underscores")
	}
	env := Environment(envPart)
	if !env.Valid() {
		return bad("the key's environment must be live or test")
	}
	if len(prefix) != PrefixLen || len(secret) != SecretLen || !isBase62(prefix) || !isBase62(secret) {
		return bad("the key contains characters or part lengths that no Veref key has")
	}
	head := s[:len(s)-checksumLen]
	if sum := checksumOf(head); string(sum[:]) != s[len(s)-checksumLen:] {
		return bad("the key's checksum does not match: it was mistyped or truncated")
	}
	return Token{Env: env, Prefix: prefix, Secret: secret, raw: s}, nil
}

func checksum(s string) string {
	b := checksumOf(s)
	return string(b[:])
}

// checksumOf is the base62 CRC-32 (IEEE) of s, computed over the string
// itself: crc32.ChecksumIEEE would need a copy of it as a []byte.
func checksumOf(s string) [checksumLen]byte {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	n := ^crc
	var b [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		b[i] = base62Alphabet[n%62]
		n /= 62
	}
	return b
}

// randomBase62 draws whole bytes and keeps those below 248 (4×62), so every
// character is uniform; one read serves the whole string almost always.
func randomBase62(n int) (string, error) {
	out, err := appendBase62(make([]byte, 0, n), n)
	return string(out), err
}

func appendBase62(out []byte, n int) ([]byte, error) {
	var buf [64]byte
	for want := len(out) + n; len(out) < want; {
		if _, err := rand.Read(buf[:]); err != nil {
			return out, fmt.Errorf("auth: reading randomness: %w", err)
		}
		for _, c := range buf {
			if c < 248 && len(out) < want {
				out = append(out, base62Alphabet[c%62])
			}
		}
	}
	return out, nil
}

// AppendRandom appends n unguessable base62 characters to dst, for ids
// built in a buffer of their own.
func AppendRandom(dst []byte, n int) []byte {
	dst, err := appendBase62(dst, n)
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return dst
}

// RandomString returns n unguessable base62 characters, for ids and
// single-use tokens elsewhere.
func RandomString(n int) string {
	s, err := randomBase62(n)
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return s
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
