package store

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/verefwork/veref/auth"
)

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns "<kind>_<time><random>": the first ten characters encode
// milliseconds since the epoch so ids sort by creation, which is what keeps
// cursor pagination stable; sixteen random base62 characters make it unique.
func NewID(kind string) string {
	return kind + "_" + timePart(time.Now()) + auth.RandomString(16)
}

func timePart(t time.Time) string {
	ms := uint64(t.UnixMilli())
	var b [10]byte
	for i := 9; i >= 0; i-- {
		b[i] = crockford[ms&31]
		ms >>= 5
	}
	return string(b[:])
}

// EncodeCursor and DecodeCursor keep cursors opaque to clients so their
// format can change without breaking anyone.
func EncodeCursor(lastID string) string {
	if lastID == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

// DecodeCursor returns the id to continue after; ok is false for garbage.
func DecodeCursor(c string) (string, bool) {
	if c == "" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 || len(b) > 100 || !strings.Contains(string(b), "_") {
		return "", false
	}
	return string(b), true
}

// ErrBadCursor is returned by List methods for a cursor they did not issue.
var ErrBadCursor = errorString("store: invalid cursor")

type errorString string

func (e errorString) Error() string { return string(e) }

// Size clamps a requested page size to [1, 200], defaulting to 50.
func (p Page) Size() int {
	switch {
	case p.Limit <= 0:
		return 50
	case p.Limit > 200:
		return 200
	default:
		return p.Limit
	}
}
