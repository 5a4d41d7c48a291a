package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/verefwork/veref/problem"
)

// CheckText finds the first string in the JSON document raw that Go's
// decoder would silently mangle: invalid UTF-8, or a \u escape of a lone
// UTF-16 surrogate, both of which decode to U+FFFD. Such input is refused
// rather than stored changed. The error locates the value under prefix
// ("body.name", "arguments.referees[0].email"). Malformed JSON is left to
// the decoder that follows, which says what is wrong with it.
func CheckText(raw []byte, prefix string) *Error {
	if !mayMangle(raw) {
		// Nearly every document: the token walk costs more than the decode
		// that follows it, so it runs only when there is something to find.
		return nil
	}
	return walkText(raw, prefix)
}

// walkText is CheckText's token walk, which finds and locates the value.
func walkText(raw []byte, prefix string) *Error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		object bool
		key    string // the pending key in an object
		expect bool   // an object expects a key next
		index  int
	}
	var stack []frame
	loc := func(isKey bool) string {
		var b []byte
		b = append(b, prefix...)
		for i, f := range stack {
			last := i == len(stack)-1
			switch {
			case f.object && last && isKey:
			case f.object:
				b = append(b, '.')
				b = append(b, f.key...)
			default:
				b = append(b, '[')
				b = strconv.AppendInt(b, int64(f.index), 10)
				b = append(b, ']')
			}
		}
		return string(b)
	}
	// after moves past a finished value in the enclosing container.
	after := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].expect = true
			} else {
				stack[n-1].index++
			}
		}
	}
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return nil
		}
		end := dec.InputOffset()
		seg := raw[prev:end]
		prev = end
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, frame{object: true, expect: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
				after()
			}
		case string:
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].expect
			if why := badText(seg); why != "" {
				at := loc(isKey)
				if isKey {
					why = "a field name " + why
				}
				return &Error{Code: problem.InvalidInput, Message: at + ": " + why,
					Errors: []FieldError{{Location: at, Message: why}}}
			}
			if isKey {
				stack[len(stack)-1].key, stack[len(stack)-1].expect = v, false
			} else {
				after()
			}
		default:
			after()
		}
	}
}

// mayMangle reports whether raw could hold text CheckText refuses: it is
// not valid UTF-8, or it has a \u escape in the surrogate range (\uD800 to
// \uDFFF, any case). A false answer is certain; a true one (an escaped
// backslash before "ud8", say) only sends raw to the full walk.
func mayMangle(raw []byte) bool {
	if !utf8.Valid(raw) {
		return true
	}
	for i := 0; ; {
		j := bytes.Index(raw[i:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += j + 2
		if i+1 < len(raw) && (raw[i] == 'd' || raw[i] == 'D') && strings.IndexByte("89abcdefABCDEF", raw[i+1]) >= 0 {
			return true
		}
	}
}

// badText says what is wrong with the string literal at the end of seg.
func badText(seg []byte) string {
	start := bytes.IndexByte(seg, '"')
	if start < 0 {
		return ""
	}
	lit := seg[start:]
	if !utf8.Valid(lit) {
		return "text must be valid UTF-8"
	}
	for i := 0; i+1 < len(lit); i++ {
		if lit[i] != '\\' {
			continue
		}
		if lit[i+1] != 'u' {
			i++ // skip the escaped character, which may be a backslash
			continue
		}
		r, ok := hex4(lit, i+2)
		if !ok {
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			// A high surrogate must be followed by a \u low surrogate.
			if lo, ok := hex4(lit, i+8); ok && i+7 < len(lit) && lit[i+6] == '\\' && lit[i+7] == 'u' && lo >= 0xDC00 && lo < 0xE000 {
				i += 11
				continue
			}
			return "text may not contain a lone UTF-16 surrogate (\\ud800-\\udfff)"
		case r >= 0xDC00 && r < 0xE000:
			return "text may not contain a lone UTF-16 surrogate (\\ud800-\\udfff)"
		}
		i += 5
	}
	return ""
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(n), err == nil
}
