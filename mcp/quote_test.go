package mcp

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The text block of a direct tools/call answer is the bytes json.Marshal
// gives for the result as a string, whatever the result holds.
func TestAppendQuotedMatchesJSONMarshal(t *testing.T) {
	for _, v := range []any{
		map[string]any{"name": `Ann "The Ref" O'Neil`, "path": `C:\temp\x`, "html": "<b>&</b>", "nl": "a\nb\tc\u0001"},
		[]string{"", `\`, `"`, `\"`, "é ü 漢字 😀", "\u2028\u2029"},
		map[string]any{},
		"plain",
	} {
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(string(js))
		if got := appendQuoted([]byte("x"), js); !bytes.Equal(got[1:], want) {
			t.Errorf("appendQuoted(%s)\n = %s\nwant %s", js, got[1:], want)
		}
	}
}

func BenchmarkAppendQuoted(b *testing.B) {
	js, _ := json.Marshal(map[string]any{"data": []map[string]string{{"id": "cand_01", "name": "Ann", "email": "a@b.c"}, {"id": "cand_02", "name": "Bob", "email": "b@c.d"}}})
	buf := make([]byte, 0, 2*len(js)+2)
	for b.Loop() {
		buf = appendQuoted(buf[:0], js)
	}
}
