package store

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Audit rows must be storable whatever a caller sent: PostgreSQL's jsonb
// refuses the \u0000 escape, lone UTF-16 surrogates and numbers past
// numeric's range, and its text columns refuse NUL and invalid UTF-8,
// while SQLite stores all of them. The forms below are what both backends
// keep, so the trail reads the same on either.

// Input encodings, in an audit event's data.inputEncoding. Absent, data.input
// is the input's JSON itself.
const (
	// InputText: data.input is a string holding the input exactly as sent
	// (its JSON text, escapes and all), because a backend could not store
	// it as JSON.
	InputText = "text"
	// InputBase64: data.input is the standard base64 of the bytes sent,
	// for input that is not UTF-8 or holds NUL bytes.
	InputBase64 = "base64"
)

// AuditInput returns what an audit event's data keeps of a call's input:
// the JSON value as sent when every backend can store it, else a string and
// its encoding (InputText or InputBase64). Nothing is lost either way.
func AuditInput(raw []byte) (input any, encoding string) {
	switch {
	case StorableJSON(raw):
		return json.RawMessage(raw), ""
	case utf8.Valid(raw) && !strings.ContainsRune(string(raw), 0):
		return string(raw), InputText
	default:
		return base64.StdEncoding.EncodeToString(raw), InputBase64
	}
}

// StorableJSON reports whether raw is a JSON document both backends store
// as JSON: valid, UTF-8, without \u0000 or lone surrogate escapes, and
// without exponents past what PostgreSQL's numeric holds.
func StorableJSON(raw []byte) bool {
	if !utf8.Valid(raw) || !json.Valid(raw) {
		return false
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			if raw[i+1] != 'u' { // valid JSON: an escape is always complete
				i++
				continue
			}
			r := hex4(raw[i+2 : i+6])
			switch {
			case r == 0:
				return false
			case r >= 0xD800 && r < 0xDC00:
				if i+11 >= len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
					return false
				}
				if lo := hex4(raw[i+8 : i+12]); lo < 0xDC00 || lo >= 0xE000 {
					return false
				}
				i += 6
			case r >= 0xDC00 && r < 0xE000:
				return false
			}
			i += 5
		case c == '"':
			inString = !inString
		case !inString && (c == 'e' || c == 'E'):
			if !smallExponent(raw[i+1:]) {
				return false
			}
		}
	}
	return true
}

// smallExponent reads the exponent that follows an 'e' of a JSON number:
// numeric holds about 1e131071 to 1e-16383, so anything past a thousand
// (no input means that) is kept as text instead.
func smallExponent(b []byte) bool {
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		b = b[1:]
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		if n > 1000 {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		}
	}
	return r
}

// StorableText returns s as both backends' text columns hold it: NUL and
// bytes that are not UTF-8 become U+FFFD. For names a caller chose (an
// unknown tool's), which are kept for reading, not for matching.
func StorableText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Storable returns e in a form every backend stores, for the rare event a
// backend refused as it was: its text made storable (StorableText) and, if
// its data is not storable JSON, the data's JSON kept whole as data.data
// with data.dataEncoding (InputText or InputBase64).
func (e AuditEvent) Storable() AuditEvent {
	for _, s := range []*string{&e.ID, &e.TenantID, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID, &e.TraceID} {
		*s = StorableText(*s)
	}
	e.Outcome = Outcome(StorableText(string(e.Outcome)))
	b, err := json.Marshal(e.Data)
	if err != nil {
		// A value encoding/json cannot encode: keep what can be said of it.
		e.Data = map[string]any{"dataError": err.Error()}
		return e
	}
	if !StorableJSON(b) {
		v, enc := AuditInput(b)
		e.Data = map[string]any{"data": v, "dataEncoding": enc}
	}
	return e
}
