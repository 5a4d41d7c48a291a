package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/verefwork/veref/problem"
)

func TestNewTokenRoundTrips(t *testing.T) {
	for _, env := range []Environment{Live, Test} {
		tok, err := NewToken(env)
		require.NoError(t, err)
		s := tok.String()
		assert.True(t, strings.HasPrefix(s, "vrf_"+string(env)+"_"))
		assert.Len(t, tok.Prefix, PrefixLen)
		assert.Len(t, tok.Secret, SecretLen)
		parsed, err := ParseToken(s)
		require.NoError(t, err)
		assert.Equal(t, env, parsed.Env)
		assert.Equal(t, tok.Prefix, parsed.Prefix)
		assert.Equal(t, tok.Secret, parsed.Secret)
		assert.NotContains(t, tok.Redacted(), tok.Secret)
	}
	_, err := NewToken("prod")
	assert.Error(t, err)
}

func TestTokensAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tok, err := NewToken(Test)
		require.NoError(t, err)
		require.False(t, seen[tok.Prefix], "prefix repeated")
		seen[tok.Prefix] = true
	}
}

func TestParseTokenRefusesEverySingleCharacterTypo(t *testing.T) {
	tok, err := NewToken(Live)
	require.NoError(t, err)
	s := tok.String()
	start := len("vrf_live_")
	for i := start; i < len(s); i++ {
		if s[i] == '_' {
			continue
		}
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		_, err := ParseToken(string(b))
		var ae *Error
		require.ErrorAs(t, err, &ae, "typo at %d accepted", i)
		assert.EqualValues(t, problem.AuthInvalidFormat, ae.Code)
	}
}

func TestParseTokenErrors(t *testing.T) {
	good, _ := NewToken(Test)
	cases := map[string]string{
		"empty":       "",
		"jwt":         "eyJhbGciOiJSUzI1NiJ9.e30.sig",
		"short":       good.String()[:30],
		"long":        good.String() + "x",
		"env":         strings.Replace(good.String(), "vrf_test_", "vrf_prod_", 1),
		"bad char":    good.String()[:20] + "-" + good.String()[21:],
		"extra part":  strings.Replace(good.String(), good.Prefix, good.Prefix[:6]+"_"+good.Prefix[7:], 1),
		"swapped env": strings.Replace(good.String(), "vrf_test_", "vrf_live_", 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseToken(in)
			var ae *Error
			require.ErrorAs(t, err, &ae)
			assert.EqualValues(t, problem.AuthInvalidFormat, ae.Code)
			if len(in) > 20 {
				assert.NotContains(t, ae.Detail, in[20:], "error echoes the secret")
			}
		})
	}
}

func FuzzParseToken(f *testing.F) {
	good, _ := NewToken(Live)
	f.Add(good.String())
	f.Add("vrf_test_")
	f.Add("vrf_live_AAAAAAAAAAAA_" + strings.Repeat("A", 40))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != problem.AuthInvalidFormat {
				t.Fatalf("unexpected error type %v", err)
			}
			return
		}
		// Anything accepted must be exactly what it claims to be.
		if tok.String() != s || !tok.Env.Valid() || len(tok.Prefix) != PrefixLen || len(tok.Secret) != SecretLen {
			t.Fatalf("accepted malformed token %q", s)
		}
		if checksum(s[:len(s)-checksumLen]) != s[len(s)-checksumLen:] {
			t.Fatalf("accepted token with bad checksum %q", s)
		}
	})
}

func TestHasher(t *testing.T) {
	_, err := NewHasher([]byte("short"))
	require.Error(t, err)
	h, err := NewHasher([]byte(strings.Repeat("p", 32)))
	require.NoError(t, err)
	h2, _ := NewHasher([]byte(strings.Repeat("q", 32)))
	sum := h.Hash("vrf_test_x")
	assert.Len(t, sum, 32)
	assert.True(t, h.Matches("vrf_test_x", sum))
	assert.False(t, h.Matches("vrf_test_y", sum))
	assert.False(t, h2.Matches("vrf_test_x", sum), "a different pepper must not match")

	// Stored hashes stay valid: it is HMAC-SHA256 with the pepper, and a
	// sum handed out does not share the pooled state's buffer.
	want := hmac.New(sha256.New, []byte(strings.Repeat("p", 32)))
	want.Write([]byte("vrf_test_x"))
	assert.Equal(t, want.Sum(nil), sum)
	_ = h.Hash("something else entirely")
	assert.Equal(t, want.Sum(nil), sum)
}

func TestScopesAndPolicies(t *testing.T) {
	s, err := ParseScopes([]string{"reports:read", "references:read", "reports:read"})
	require.NoError(t, err)
	assert.Equal(t, []Scope{ReferencesRead, ReportsRead}, s)
	_, err = ParseScopes([]string{"references:delete"})
	require.ErrorContains(t, err, `"references:delete"`)

	pol := AnyOf(ReportsRead, ReferencesRead)
	assert.True(t, pol.Allows([]Scope{ReferencesRead}))
	assert.False(t, pol.Allows([]Scope{CandidatesRead}))
	assert.True(t, Policy(nil).Allows(nil))
	assert.Equal(t, "reports:read or references:read", pol.String())
}

type fakeKeys map[string]KeyRecord

func (f fakeKeys) KeyByPrefix(_ context.Context, prefix string) (KeyRecord, error) {
	if k, ok := f[prefix]; ok {
		return k, nil
	}
	return KeyRecord{}, ErrKeyNotFound
}

func TestAuthenticator(t *testing.T) {
	h, _ := NewHasher([]byte(strings.Repeat("k", 32)))
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	mk := func(env Environment, mut func(*KeyRecord)) string {
		tok, _ := NewToken(env)
		rec := KeyRecord{ID: "key_" + tok.Prefix, TenantID: "acme", RecruiterID: "r1", Prefix: tok.Prefix, Environment: env, Hash: h.Hash(tok.String())}
		if mut != nil {
			mut(&rec)
		}
		keys[tok.Prefix] = rec
		return tok.String()
	}
	keys = fakeKeys{}
	a := &Authenticator{Keys: keys, Hasher: h, Now: func() time.Time { return now }}

	good := mk(Test, nil)
	p, err := a.Authenticate(context.Background(), good)
	require.NoError(t, err)
	assert.Equal(t, "acme", p.TenantID)
	assert.Equal(t, Test, p.Environment)
	assert.Equal(t, AllScopes(), p.Scopes, "empty scopes mean all")

	narrow := mk(Live, func(r *KeyRecord) { r.Scopes = []Scope{ReportsRead} })
	p, err = a.Authenticate(context.Background(), narrow)
	require.NoError(t, err)
	assert.Equal(t, []Scope{ReportsRead}, p.Scopes)

	past := now.Add(-time.Minute)
	future := now.Add(time.Minute)
	code := func(tok string) problem.Code {
		_, err := a.Authenticate(context.Background(), tok)
		var ae *Error
		require.ErrorAs(t, err, &ae)
		return ae.Code
	}
	assert.EqualValues(t, problem.AuthRevokedKey, code(mk(Test, func(r *KeyRecord) { r.RevokedAt = &past })))
	assert.EqualValues(t, problem.AuthExpiredKey, code(mk(Test, func(r *KeyRecord) { r.ExpiresAt = &now })))
	_, err = a.Authenticate(context.Background(), mk(Test, func(r *KeyRecord) { r.ExpiresAt = &future }))
	assert.NoError(t, err)
	assert.EqualValues(t, problem.AuthInvalidKey, code(mk(Test, func(r *KeyRecord) { r.Hash = h.Hash("other") })))
	unknown, _ := NewToken(Test)
	assert.EqualValues(t, problem.AuthInvalidKey, code(unknown.String()))
	assert.EqualValues(t, problem.AuthInvalidFormat, code("vrf_nope"))

	// A parsed token authenticates as its text does; a Token made any other
	// way (its prefix alone) is refused, though its prefix is a known key's.
	parsed, err := ParseToken(good)
	require.NoError(t, err)
	p, err = a.AuthenticateToken(context.Background(), parsed)
	require.NoError(t, err)
	assert.Equal(t, "acme", p.TenantID)
	_, err = a.AuthenticateToken(context.Background(), Token{Env: Test, Prefix: parsed.Prefix})
	var ae *Error
	require.ErrorAs(t, err, &ae)
	assert.EqualValues(t, problem.AuthInvalidKey, ae.Code)
}

var keys fakeKeys

func TestCredentialFromHeaders(t *testing.T) {
	tok, err := CredentialFromHeaders("Bearer abc", "")
	require.NoError(t, err)
	assert.Equal(t, "abc", tok)
	tok, err = CredentialFromHeaders("", "xyz")
	require.NoError(t, err)
	assert.Equal(t, "xyz", tok)
	tok, err = CredentialFromHeaders("bearer same", "same")
	require.NoError(t, err)
	assert.Equal(t, "same", tok)

	for _, c := range []struct {
		authz, key string
		code       problem.Code
	}{
		{"", "", problem.AuthMissing},
		{"Basic dXNlcjpwYXNz", "", problem.AuthInvalidFormat},
		{"Bearer ", "", problem.AuthInvalidFormat},
		{"Bearer one", "two", problem.AuthInvalidFormat},
	} {
		_, err := CredentialFromHeaders(c.authz, c.key)
		var ae *Error
		require.ErrorAs(t, err, &ae, "%+v", c)
		assert.Equal(t, c.code, ae.Code, "%+v", c)
	}
}

// The checksum is computed over the string by hand to spare a copy; it must
// stay the CRC-32 every key already issued carries.
func TestChecksumIsCRC32IEEE(t *testing.T) {
	for _, s := range []string{"", "vrf", "vrf_live_ABCDEFGHIJKL_" + strings.Repeat("z", 34), "\x00\xff_ü"} {
		n := crc32.ChecksumIEEE([]byte(s))
		var want [checksumLen]byte
		for i := checksumLen - 1; i >= 0; i-- {
			want[i] = base62Alphabet[n%62]
			n /= 62
		}
		assert.Equal(t, want, checksumOf(s), "%q", s)
	}
}
