package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/api/clerktest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// corpusOp is one documented operation, read from the served OpenAPI
// documents so an operation added later is covered without editing this.
type corpusOp struct {
	method, path string
	query        []string
	body         map[string]any // properties of the JSON body, nil when none
	session      bool           // key management: a signed-in session, not a key
}

func documentedOps(t *testing.T, e *apitest.Env, doc string, session bool) []corpusOp {
	r := e.Do("GET", doc, "", nil)
	require.EqualValues(t, 200, r.Status, doc)
	var spec struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &spec))
	var ops []corpusOp
	for path, methods := range spec.Paths {
		for method, raw := range methods {
			var op struct {
				Parameters []struct {
					Name, In string
				} `json:"parameters"`
				RequestBody *struct {
					Content map[string]struct {
						Schema struct {
							Ref string `json:"$ref"`
						} `json:"schema"`
					} `json:"content"`
				} `json:"requestBody"`
			}
			if json.Unmarshal(raw, &op) != nil {
				continue
			}
			c := corpusOp{method: strings.ToUpper(method), path: path, session: session}
			for _, p := range op.Parameters {
				if p.In == "query" {
					c.query = append(c.query, p.Name)
				}
			}
			if op.RequestBody != nil {
				c.body = map[string]any{}
				ref := op.RequestBody.Content["application/json"].Schema.Ref
				if s := spec.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]; s != nil {
					c.body, _ = s["properties"].(map[string]any)
				}
			}
			ops = append(ops, c)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].method+ops[i].path < ops[j].method+ops[j].path })
	return ops
}

// malformed is one request of the corpus.
type malformed struct {
	name, path, contentType string
	body                    []byte
}

func deep(n int) []byte {
	return []byte(`{"x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`)
}

// bodies is the body corpus for an operation with these body properties.
func bodies(props map[string]any) map[string][]byte {
	out := map[string][]byte{
		"null": []byte("null"), "array": []byte("[]"), "array of objects": []byte(`[{}]`), "number": []byte("42"),
		"string": []byte(`"x"`), "bool": []byte("true"), "not json": []byte(`{"a":`), "trailing": []byte(`{}{}`),
		"invalid utf-8 key": []byte("{\"\xff\":1}"), "unknown field": []byte(`{"zzzUnknown":1}`),
		"1 MiB + 1":   append(append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 1<<20)...), []byte(`"}`)...),
		"10,000 deep": deep(10000), "10,001 deep": deep(10001),
		"huge number": []byte(`{"x":1e999999}`),
	}
	for name, schema := range props {
		typ, _ := schema.(map[string]any)["type"].(string)
		wrong := map[string]string{"string": `123`, "integer": `"12"`, "number": `"1"`, "boolean": `"yes"`,
			"array": `{"a":1}`, "object": `["a"]`}
		for kind, v := range map[string]string{
			"wrong type":    wrong[typ],
			"null":          `null`,
			"invalid utf8":  "\"a\xffb\"",
			"surrogate":     `"a\ud800b"`,
			"low surrogate": `"\udfff"`,
			"nul":           `"a\u0000b"`,
			"huge int":      `123456789012345678901234567890`,
			"negative":      `-1`,
			"float":         `1.5`,
			"long text":     `"` + strings.Repeat("z", 70000) + `"`,
			"deep":          string(deep(200)[5 : len(deep(200))-1]),
		} {
			if v == "" {
				continue
			}
			out[name+": "+kind] = []byte(`{"` + name + `":` + v + `}`)
		}
	}
	return out
}

var oddIDs = []string{"x", strings.Repeat("a", 5000), "%2e%2e", "%00", "a%00b", "%FF", "%ED%A0%80", "%27%20OR%201%3D1--",
	"%C3%BC%C3%B1%C3%AF", "-1", "0", "%20", "cand_" + strings.Repeat("9", 40), "%F0%9F%98%80"}

var oddQueryValues = []string{"%FF", "%00", "", "-1", "0", "abc", "99999999999999999999999", "1.5", strings.Repeat("q", 5000),
	"%ED%A0%80", "true"}

func (c corpusOp) requests(ids map[string]string) []malformed {
	fill := func(oddParam, odd string) string {
		p := c.path
		for {
			i := strings.Index(p, "{")
			if i < 0 {
				return p
			}
			j := strings.Index(p[i:], "}") + i
			name := p[i+1 : j]
			v := ids[name]
			if name == oddParam {
				v = odd
			}
			if v == "" {
				v = "x"
			}
			p = p[:i] + v + p[j+1:]
		}
	}
	var out []malformed
	for _, seg := range strings.Split(c.path, "/") {
		if strings.HasPrefix(seg, "{") && seg != "{tenant}" {
			for _, odd := range oddIDs {
				out = append(out, malformed{name: "odd " + seg + " " + odd, path: fill(strings.Trim(seg, "{}"), odd)})
			}
		}
	}
	base := fill("", "")
	out = append(out,
		malformed{name: "unknown query", path: base + "?zzzUnknown=1"},
		malformed{name: "query with NUL name", path: base + "?a%00b=1"},
		malformed{name: "query with invalid UTF-8 name", path: base + "?%FF=1"},
	)
	for _, q := range c.query {
		for _, v := range oddQueryValues {
			out = append(out, malformed{name: "query " + q + "=" + v, path: base + "?" + q + "=" + v})
		}
		out = append(out, malformed{name: "query " + q + " twice", path: base + "?" + q + "=1&" + q + "=2"})
	}
	if c.body != nil {
		for name, b := range bodies(c.body) {
			out = append(out, malformed{name: "body " + name, path: base, body: b, contentType: "application/json"})
		}
		out = append(out,
			malformed{name: "text/plain body", path: base, body: []byte(`{}`), contentType: "text/plain"},
			malformed{name: "form body", path: base, body: []byte(`a=1`), contentType: "application/x-www-form-urlencoded"},
			malformed{name: "no content type", path: base, body: []byte(`{}`)},
			malformed{name: "bad content type", path: base, body: []byte(`{}`), contentType: ";;;"},
		)
	}
	return out
}

// checkAnswer holds every answer to the corpus to the same standard: an
// answer (never a cut connection), never a 5xx, and a complete problem.
func checkAnswer(t *testing.T, what string, res *http.Response, err error) {
	t.Helper()
	if !assert.NoError(t, err, "%s: no answer", what) {
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	assert.Less(t, res.StatusCode, 500, "%s: %s", what, body)
	assert.NotEmpty(t, body, "%s: empty reply", what)
	if res.StatusCode < 400 {
		return
	}
	p, derr := problem.Decode(body, res.StatusCode)
	if !assert.NoError(t, derr, "%s: not a problem: %s", what, body) {
		return
	}
	assert.True(t, p.Code.Known(), "%s: unknown code %s", what, p.Code)
	assert.Equal(t, p.Code.Type(), p.Type, what)
	assert.EqualValues(t, p.Code.Status(), res.StatusCode, "%s: status from the table", what)
	assert.NotEmpty(t, p.TraceID, "%s: no traceId", what)
	assert.Equal(t, p.TraceID, res.Header.Get("X-Trace-Id"), what)
	assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), what)
}

func send(e *apitest.Env, method, path string, body []byte, headers ...string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return http.DefaultClient.Do(req)
}

// TestMalformedCorpus sends a corpus of malformed requests to every
// documented operation, the agent and the public link routes, on every
// backend, and accepts no 5xx, no empty reply and no incomplete problem.
func TestMalformedCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus is long; run without -short")
	}
	eachBackend(t, func(t *testing.T, st store.Store) {
		iss := clerktest.New(t)
		e := apitest.New(t, st, apitest.Options{
			Clerk: api.NewClerkVerifier(iss.JWKSURL(), iss.Issuer(), nil),
			// A provider that is never reached: malformed requests are
			// refused before any model is asked.
			Agent: func(reg *tools.Registry) http.Handler {
				return agent.NewHandler(reg, st, agent.Config{APIKey: "unused", BaseURL: "http://127.0.0.1:9/v1"})
			},
		})
		e.Tenant("acme")
		key := e.Key("acme", auth.Test)
		session := iss.Session("user_acme", "org_acme", "admin", time.Hour)
		ref, cand := startedRequest(t, e, key)
		ids := map[string]string{"tenant": "acme", "id": cand}

		ops := append(documentedOps(t, e, "/openapi.json", false), documentedOps(t, e, "/v1/tenants/openapi.json", true)...)
		require.Greater(t, len(ops), 20, "both documents were read")
		n := 0
		for _, op := range ops {
			// A key of its own, so an operation that ends its key ends no other.
			auth := "Bearer " + e.Key("acme", auth.Test)
			if op.session {
				auth = "Bearer " + session
			}
			if strings.Contains(op.path, "references/{id}") {
				ids["id"] = ref
			} else {
				ids["id"] = cand
			}
			for _, m := range op.requests(ids) {
				res, err := send(e, op.method, m.path, m.body, "Authorization", auth, "Content-Type", m.contentType)
				checkAnswer(t, fmt.Sprintf("%s %s — %s", op.method, op.path, m.name), res, err)
				n++
			}
		}

		links := invitationLinks(t, e, expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
			"candidate": map[string]any{"name": "Casey"}, "sendInvitations": true,
			"referees": []any{refereeIn("Mia Manager", "mia@example.com", "manager")},
		}), 201))
		var link string
		for _, l := range links {
			link = l
		}
		public := corpusOp{method: "POST", path: link + "/response", body: map[string]any{
			"answers": map[string]any{"type": "array"}, "decline": map[string]any{"type": "boolean"},
			"reason": map[string]any{"type": "string"}}}
		agentOp := corpusOp{method: "POST", path: "/v1/api/agent", body: map[string]any{
			"message": map[string]any{"type": "string"}, "conversationId": map[string]any{"type": "string"}}}
		for _, op := range []corpusOp{public, agentOp} {
			for _, m := range op.requests(ids) {
				res, err := send(e, op.method, m.path, m.body, "Authorization", "Bearer "+key, "Content-Type", m.contentType)
				checkAnswer(t, fmt.Sprintf("%s %s — %s", op.method, op.path, m.name), res, err)
				n++
			}
		}
		for _, odd := range oddIDs {
			for _, p := range []string{"/v1/referee/" + odd, "/v1/shares/" + odd, "/v1/referee/" + odd + "/response"} {
				method := "GET"
				if strings.HasSuffix(p, "/response") {
					method = "POST"
				}
				res, err := send(e, method, p, []byte(`{"decline":true}`), "Content-Type", "application/json")
				checkAnswer(t, method+" "+p, res, err)
				n++
			}
		}
		t.Logf("%d malformed requests sent", n)
	})
}
