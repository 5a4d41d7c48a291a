package api_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

// assertProblem checks the parts of a problem every error must carry.
func assertProblem(t *testing.T, r apitest.Response, status int, code string) map[string]any {
	t.Helper()
	require.EqualValues(t, status, r.Status, string(r.Body))
	assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	p := r.JSON()
	assert.Equal(t, code, p["code"], string(r.Body))
	assert.Equal(t, "https://docs.veref.work/errors/"+code, p["type"])
	assert.NotEmpty(t, p["traceId"], "traceId in the body")
	assert.Equal(t, p["traceId"], r.Header.Get("X-Trace-Id"), "the same trace id in the header")
	return p
}

func locations(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		loc, _ := e.(map[string]any)["location"].(string)
		out = append(out, loc)
	}
	return out
}

// startedRequest makes a candidate with a reference request, and returns
// the request id and the candidate id.
func startedRequest(t *testing.T, e *apitest.Env, key string) (string, string) {
	r := e.Do("POST", "/v1/api/references", key, map[string]any{"candidate": map[string]any{"name": "Dana"},
		"referees": []any{map[string]any{"name": "W", "email": "w@example.com", "relationship": "manager"}}})
	require.EqualValues(t, 201, r.Status, string(r.Body))
	return r.JSON()["id"].(string), r.JSON()["candidateId"].(string)
}

func TestNullBodyIsInvalidInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.Key("acme", auth.Test)
		ref, cand := startedRequest(t, e, key)
		for _, path := range []string{
			"PATCH /v1/api/candidates/" + cand,
			"POST /v1/api/references/" + ref + "/cancel",
			"POST /v1/api/references/" + ref + "/invitations",
			"POST /v1/api/references/" + ref + "/reports",
			"POST /v1/api/reports/rpt_x/shares",
			"POST /v1/api/references/" + ref + "/valuations",
			"POST /v1/api/candidates",
		} {
			method, p, _ := strings.Cut(path, " ")
			for _, body := range []string{"null", "[]", "42", `"x"`, "true"} {
				r := e.Do(method, p, key, body)
				pb := assertProblem(t, r, 422, "INVALID_INPUT")
				assert.Equal(t, []string{"body"}, locations(pb), "%s %s", path, body)
			}
		}
		r := e.Do("GET", "/v1/api/references/"+ref, key, nil)
		assert.Equal(t, "draft", r.JSON()["status"], "nothing changed")
	})
}

func TestManglingTextIsRefusedNamingTheField(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.Key("acme", auth.Test)
		for body, loc := range map[string]string{
			"{\"name\":\"Bob\xff\"}":        "body.name",
			`{"name":"Bob\ud800"}`:          "body.name",
			`{"name":"ok","role":"\udc00"}`: "body.role",
		} {
			r := e.Do("POST", "/v1/api/candidates", key, body)
			pb := assertProblem(t, r, 422, "INVALID_INPUT")
			assert.Equal(t, []string{loc}, locations(pb), body)
		}
		r := e.Do("GET", "/v1/api/candidates?q=%FF", key, nil)
		pb := assertProblem(t, r, 422, "INVALID_INPUT")
		assert.Equal(t, []string{"query.q"}, locations(pb))

		ok := e.Do("POST", "/v1/api/candidates", key, `{"name":"Zoë \ud83d\ude00"}`)
		require.EqualValues(t, 201, ok.Status, string(ok.Body))
		assert.Equal(t, "Zoë 😀", ok.JSON()["name"], "valid pairs and accents pass unchanged")
		rows, _, err := st.ListCandidates(context.Background(), store.Tenancy{TenantID: "acme", Environment: auth.Test}, store.CandidateFilter{}, store.Page{})
		require.NoError(t, err)
		assert.Len(t, rows, 1, "only the valid one was stored")
	})
}

func TestUnknownQueryParametersAreRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.Key("acme", auth.Test)
		r := e.Do("GET", "/v1/api/references?candidate_id=x", key, nil)
		pb := assertProblem(t, r, 422, "INVALID_INPUT")
		assert.Equal(t, []string{"query.candidate_id"}, locations(pb))
		assert.Contains(t, pb["hint"], "candidateId", "names the parameters it does take")

		r = e.Do("GET", "/v1/api/me?verbose=1", key, nil)
		assertProblem(t, r, 422, "INVALID_INPUT")
		r = e.Do("GET", "/v1/api/candidates?limit=1&limit=2", key, nil)
		assertProblem(t, r, 422, "INVALID_INPUT")
		r = e.Do("GET", "/v1/api/candidates?limit=1", key, nil)
		assert.EqualValues(t, 200, r.Status, string(r.Body))
	})
}

func TestWrongMethodAndTrailingSlash(t *testing.T) {
	e := apitest.New(t, openSQLite(t), apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)

	r := e.Do("DELETE", "/v1/api/candidates", key, nil)
	assertProblem(t, r, 405, "METHOD_NOT_ALLOWED")
	assert.Equal(t, "GET, POST", r.Header.Get("Allow"))
	r = e.Do("PUT", "/v1/api/candidates/cand_x", key, `{}`)
	assertProblem(t, r, 405, "METHOD_NOT_ALLOWED")
	assert.Equal(t, "GET, PATCH", r.Header.Get("Allow"))

	r = e.Do("GET", "/v1/api/candidates/", key, nil)
	pb := assertProblem(t, r, 404, "NOT_FOUND")
	assert.Contains(t, pb["hint"], "/v1/api/candidates")

	r = e.Do("GET", "/v1/api/nothing-here", key, nil)
	assertProblem(t, r, 404, "NOT_FOUND")
	r = e.Do("DELETE", "/v1/api/candidates", "", nil)
	assertProblem(t, r, 401, "AUTH_MISSING")

	// Outside /v1/api too: the public routes and key management.
	r = e.Do("DELETE", "/v1/referee/tok", "", nil)
	assertProblem(t, r, 405, "METHOD_NOT_ALLOWED")
	assert.Equal(t, "GET", r.Header.Get("Allow"))
	r = e.Do("GET", "/no/such/page", "", nil)
	assertProblem(t, r, 404, "NOT_FOUND")
}

func TestNonJSONBodiesAreUnsupported(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.Key("acme", auth.Test)
		ref, _ := startedRequest(t, e, key)
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/xml", "nonsense/;;"} {
			r := e.Do("POST", "/v1/api/candidates", key, `{"name":"A"}`, "Content-Type", ct)
			assertProblem(t, r, 415, "UNSUPPORTED_MEDIA_TYPE")
		}
		for _, ct := range []string{"application/json; charset=utf-8", "application/merge-patch+json", "APPLICATION/JSON"} {
			r := e.Do("POST", "/v1/api/candidates", key, `{"name":"A"}`, "Content-Type", ct)
			assert.EqualValues(t, 201, r.Status, "%s: %s", ct, r.Body)
		}
		// An optional body may be left out, whatever the Content-Type says.
		r := e.Do("POST", "/v1/api/references/"+ref+"/cancel", key, "", "Content-Type", "text/plain")
		assert.EqualValues(t, 200, r.Status, string(r.Body))
	})
}

func TestPatchWithNothingToChangeNamesTheBody(t *testing.T) {
	e := apitest.New(t, openSQLite(t), apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	_, cand := startedRequest(t, e, key)
	r := e.Do("PATCH", "/v1/api/candidates/"+cand, key, `{}`)
	pb := assertProblem(t, r, 422, "INVALID_INPUT")
	assert.Equal(t, []string{"body"}, locations(pb), "not body.body")
}

// syncBuffer collects log output written from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGuardTurnsAPanicIntoAProblem(t *testing.T) {
	st := openSQLite(t)
	e := apitest.New(t, st, apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)

	var appLog, serverLog syncBuffer
	usage := api.NewUsageWriter(st, zerolog.Nop(), time.Hour)
	t.Cleanup(func() { _ = usage.Close(context.Background()) })
	g := &api.Guard{Authn: &auth.Authenticator{Keys: st, Hasher: e.Hasher}, Hasher: e.Hasher, Usage: usage,
		Log: zerolog.New(&appLog), Now: time.Now}
	srv := httptest.NewUnstartedServer(g.Wrap("rest", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		var m map[string]any
		m["boom"] = 1 // the nil-map write a null body used to cause
	})))
	srv.Config.ErrorLog = log.New(&serverLog, "", 0)
	srv.Start()
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/x", strings.NewReader("null"))
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "an answer, not a cut connection")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	r := apitest.Response{Status: res.StatusCode, Header: res.Header, Body: body}
	pb := assertProblem(t, r, 500, "INTERNAL")

	assert.Empty(t, serverLog.String(), "net/http saw no panic")
	assert.Contains(t, appLog.String(), "handler panicked")
	assert.Contains(t, appLog.String(), pb["traceId"].(string))
	assert.NotContains(t, appLog.String(), "127.0.0.1", "no raw client address in the log")
}

func TestKeyManagementRefusesMalformedBodiesWithTraceIDs(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		m := newMgmt(t, st, 100)
		admin := m.iss.Session("user_acme", "org_acme", "admin", time.Hour)
		base := "/v1/tenants/acme/api-keys"
		for body, loc := range map[string]string{
			"{\"name\":\"Bad\xff key\",\"environment\":\"test\"}": "body.name",
			`{"name":"Bad \ud800 key","environment":"test"}`:      "body.name",
			`null`: "body",
			`[]`:   "body",
		} {
			r := m.call("POST", base, admin, body)
			pb := assertProblem(t, r, 422, "INVALID_INPUT")
			assert.Equal(t, []string{loc}, locations(pb), body)
		}
		r := m.Do("POST", base, "", `{"name":"ok key","environment":"test"}`, "Authorization", "Bearer "+admin, "Content-Type", "text/plain")
		assertProblem(t, r, 415, "UNSUPPORTED_MEDIA_TYPE")
		// Errors from the handlers carry the trace id too.
		r = m.call("POST", base, "not-a-session", map[string]any{"name": "ok key", "environment": "test"})
		assertProblem(t, r, 401, "AUTH_INVALID_SESSION")
		r = m.call("POST", base, admin, map[string]any{"name": "x", "environment": "test"})
		assertProblem(t, r, 422, "INVALID_INPUT")

		keys, _, err := st.ListAPIKeys(context.Background(), "acme", store.APIKeyFilter{}, store.Page{})
		require.NoError(t, err)
		assert.Empty(t, keys, "no key was created by a refused call")
	})
}

func TestPublicRoutesRefuseMalformedBodies(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		key := e.Key("acme", auth.Test)
		ref := expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
			"candidate": map[string]any{"name": "Casey"}, "sendInvitations": true,
			"referees": []any{refereeIn("Mia Manager", "mia@example.com", "manager")},
		}), 201)
		var link string
		for _, l := range invitationLinks(t, e, ref) {
			link = l
		}
		long := strings.Repeat("é", 2001) // 2,001 characters: the limit counts characters, not bytes
		for body, loc := range map[string]string{
			`null`: "body", `[1]`: "body", ``: "body", `"decline"`: "body", `7`: "body",
			`{"decline":true,"reason":"no\ud800"}`:     "body.reason",
			"{\"decline\":true,\"reason\":\"no\xff\"}": "body.reason",
			`{"decline":true,"reason":"no\u0000"}`:     "body.reason",
			// The schema, as for every tool: types, unknown fields, lengths.
			`{"decline":"yes"}`:                              "body.decline",
			`{"decline":true,"reason":5}`:                    "body.reason",
			`{"answers":{"questionId":"q1"}}`:                "body.answers",
			`{"answers":[7]}`:                                "body.answers[0]",
			`{"answers":[{"rating":4}]}`:                     "body.answers[0].questionId",
			`{"answers":[{"questionId":"q1","rating":"4"}]}`: "body.answers[0].rating",
			`{"answers":[{"questionId":"q1","rating":9}]}`:   "body.answers[0].rating",
			`{"answers":[{"questionId":"q5","text":"` + strings.Repeat("a", 5001) + `"}]}`: "body.answers[0].text",
			`{"answers":[{"questionId":"q5","text":"ok","mood":"fine"}]}`:                  "body.answers[0].mood",
			`{"decline":true,"reason":"` + long + `"}`:                                     "body.reason",
			`{"decline":true,"extra":1}`:                                                   "body.extra",
		} {
			r := e.Do("POST", link+"/response", "", body)
			pb := assertProblem(t, r, 422, "INVALID_INPUT")
			assert.Equal(t, []string{loc}, locations(pb), body)
		}
		r := e.Do("POST", link+"/response", "", `{"decline":true}`, "Content-Type", "text/plain")
		assertProblem(t, r, 415, "UNSUPPORTED_MEDIA_TYPE")
		r = e.Do("GET", "/v1/referee/not-a-token", "", nil)
		assertProblem(t, r, 404, "LINK_INVALID")

		inv := expect(t, e.Do("GET", link, "", nil), 200)
		assert.NotEqual(t, "declined", inv["status"], "the invitation is still open")
		events, _, err := st.ListAuditEvents(context.Background(), "acme", store.AuditQuery{Surface: string(store.SurfacePublic)}, store.Page{})
		require.NoError(t, err)
		for _, ev := range events {
			assert.Equal(t, "invitation.open", ev.Action, "no refused body answered or declined")
		}
		// The same link still takes a good answer.
		expect(t, e.Do("POST", link+"/response", "", refereeAnswers([4]int{5, 4, 4, 5}, "Calm", "Delegation")), 200)
	})
}

func TestWriteScopeAlsoReads(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		e := apitest.New(t, st, apitest.Options{})
		e.Tenant("acme")
		all := e.Key("acme", auth.Test)
		ref, cand := startedRequest(t, e, all)
		for key, paths := range map[string][]string{
			e.Key("acme", auth.Test, auth.CandidatesWrite): {"/v1/api/candidates", "/v1/api/candidates/" + cand},
			e.Key("acme", auth.Test, auth.ReferencesWrite): {"/v1/api/references", "/v1/api/references/" + ref, "/v1/api/reports"},
			e.Key("acme", auth.Test, auth.ReportsWrite):    {"/v1/api/reports"},
			e.Key("acme", auth.Test, auth.ValuationsWrite): {"/v1/api/valuations"},
		} {
			for _, p := range paths {
				r := e.Do("GET", p, key, nil)
				assert.EqualValues(t, 200, r.Status, "%s: %s", p, r.Body)
			}
		}
		// Writing one resource reads no other.
		r := e.Do("GET", "/v1/api/references", e.Key("acme", auth.Test, auth.CandidatesWrite), nil)
		assertProblem(t, r, 403, "SCOPE_MISSING")

		var doc map[string]any
		r = e.Do("GET", "/openapi.json", "", nil)
		r.Decode(t, &doc)
		get := doc["paths"].(map[string]any)["/v1/api/candidates/{id}"].(map[string]any)["get"].(map[string]any)
		assert.Contains(t, get["description"], "Requires: candidates:read or candidates:write.")
	})
}
