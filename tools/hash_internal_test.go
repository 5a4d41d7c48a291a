package tools

import (
	"encoding/json"
	"testing"
)

func TestIdempotencyHashIsOverTheTypedInput(t *testing.T) {
	type in struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	hash := func(body string) string {
		var v in
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		return hashRequest("x", &v)
	}
	same := hash(`{"name":"a","count":1}`) // key order, spacing and escapes must not matter
	for _, body := range []string{`{ "count": 1, "name": "a" }`, `{"name":"\u0061","count":1}`} {
		if hash(body) != same {
			t.Errorf("%s hashes differently from the same input spelt otherwise", body)
		}
	}
	if hash(`{"name":"a","count":2}`) == same || hashRequest("y", &in{Name: "a", Count: 1}) == same {
		t.Error("a different input or tool must hash differently")
	}
}
