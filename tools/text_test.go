package tools

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckTextLocatesManglingInput(t *testing.T) {
	cases := map[string]string{
		"{\"name\":\"Bob\xff\"}":                             "body.name",
		`{"name":"Bob\ud800"}`:                               "body.name",
		`{"name":"\udc00x"}`:                                 "body.name",
		`{"name":"\ud800\u0041"}`:                            "body.name",
		`{"a":1,"referees":[{"x":"ok"},{"email":"\ud83d"}]}`: "body.referees[1].email",
		"{\"tags\":[\"a\",\"b\",\"\xc3\"]}":                  "body.tags[2]",
		"{\"k\xff\":1}":                                      "body",
		`{"o":{"p":{"q":["\udfff"]}}}`:                       "body.o.p.q[0]",
		`["\ud800"]`:                                         "body[0]",
		`"\ud800"`:                                           "body",
		`{"a":"x\\","b":"\\ud800"}`:                          "",
		`{"emoji":"\ud83d\ude00","name":"Zoë","e":"\u00e9"}`: "",
		`{"deep":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`: "",
		`{not json`: "",
	}
	for in, want := range cases {
		err := CheckText([]byte(in), "body")
		if want == "" {
			assert.Nil(t, err, "%q", in)
			continue
		}
		if assert.NotNil(t, err, "%q", in) {
			assert.Equal(t, want, err.Errors[0].Location, "%q", in)
			assert.Equal(t, "INVALID_INPUT", string(err.Code))
		}
	}
}

// The pre-check may only skip the walk when the walk would find nothing:
// every refused case above, and random documents built from the bytes
// that matter (backslashes, u, surrogate digits, invalid UTF-8), agree.
func TestMayMangleNeverHidesWhatTheWalkFinds(t *testing.T) {
	alphabet := []string{`\`, `u`, `d`, `D`, `8`, `b`, `f`, `0`, `"`, `a`, "\xff", "\xc3", "é", `{`, `}`, `:`, `,`, `[`, `]`}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200000 {
		var b strings.Builder
		b.WriteString(`{"k":"`)
		for range 1 + i%12 {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		b.WriteString(`"}`)
		doc := []byte(b.String())
		if walkText(doc, "body") != nil && !mayMangle(doc) {
			t.Fatalf("the pre-check skips %q, which the walk refuses", doc)
		}
	}
	assert.False(t, mayMangle([]byte(`{"name":"Zoë","e":"\u00e9","limit":10}`)))
}
