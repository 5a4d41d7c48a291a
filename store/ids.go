package store

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verefwork/veref/auth"
)

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

var (
	idMu   sync.Mutex
	lastMS int64
	seq    uint64
)

// NewID returns "<kind>_<time><sequence><random>": ten characters of
// milliseconds since the epoch, then a four-character sequence within the
// millisecond, so ids made by one process sort in creation order (what keeps
// "newest first" lists and their cursors stable); twelve random base62
// characters make ids from different processes unique.
func NewID(kind string) string {
	idMu.Lock()
	ms := time.Now().UnixMilli()
	if ms <= lastMS {
		ms, seq = lastMS, seq+1
		if seq >= 1<<20 { // four base32 characters; borrow the next millisecond
			ms, seq = ms+1, 0
		}
	} else {
		seq = 0
	}
	lastMS = ms
	s := seq
	idMu.Unlock()
	// Built in one buffer: every request makes an id for its usage row.
	var buf [64]byte
	b := append(buf[:0], kind...)
	b = append(b, '_')
	b = appendBase32(b, uint64(ms), 10)
	b = appendBase32(b, s, 4)
	return string(auth.AppendRandom(b, 12))
}

// atSeq tells apart ids of one millisecond made by NewIDAt; uniqueness
// rests on the random part, so it only needs to wrap, not to order.
var atSeq atomic.Uint32

// NewIDAt is an id of NewID's shape whose time part is at's millisecond
// rather than the moment of the call. Usage rows and audit events take
// theirs from it, so a key's rows in a time range, and the rows old enough
// to purge, are ranges of ids: their tables need no index on at, and each
// authenticated request, which writes a usage row, pays for fewer indexes.
func NewIDAt(kind string, at time.Time) string {
	var buf [64]byte
	b := append(buf[:0], kind...)
	b = append(b, '_')
	b = appendBase32(b, uint64(max(at.UnixMilli(), 0)), 10)
	b = appendBase32(b, uint64(atSeq.Add(1)&(1<<20-1)), 4)
	// Twelve base62 characters from the runtime's generator: these only
	// need to differ between processes, and crypto/rand's system call per
	// request showed in the profile.
	for _, r := range [2]uint64{rand.Uint64(), rand.Uint64()} {
		for range 6 {
			b = append(b, base62[r%62])
			r /= 62
		}
	}
	return string(b)
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func base32(v uint64, n int) string {
	var buf [16]byte
	return string(appendBase32(buf[:0], v, n))
}

func appendBase32(dst []byte, v uint64, n int) []byte {
	for i := range n {
		dst = append(dst, crockford[(v>>(5*(n-1-i)))&31])
	}
	return dst
}

// IDAt is the smallest id of kind NewID could have made at t: ids compare
// like their creation times, so a time range becomes an id range an index
// on id can seek to.
func IDAt(kind string, t time.Time) string {
	ms := max(t.UnixMilli(), 0)
	return kind + "_" + base32(uint64(ms), 10)
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
