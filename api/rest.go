package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/tools"
)

const maxBodyBytes = 1 << 20

// jsonContentType is shared by every REST answer instead of allocated per
// response: header values are replaced, never written into.
var jsonContentType = []string{"application/json"}

// bufferedBody is what net/http buffers of a body before it must choose
// between a length it knows and chunked encoding (bufferBeforeChunkingSize).
const bufferedBody = 2048

// param is a path or query field of a tool's input type.
type param struct {
	name  string // the JSON name in the tool input, and the HTTP name
	in    string // path or query
	kind  reflect.Kind
	field reflect.StructField
}

func paramsOf(t reflect.Type) []param {
	var out []param
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, paramsOf(f.Type)...)
			continue
		}
		for _, in := range []string{"path", "query"} {
			if name := f.Tag.Get(in); name != "" {
				k := f.Type.Kind()
				if k == reflect.Pointer {
					k = f.Type.Elem().Kind()
				}
				out = append(out, param{name: name, in: in, kind: k, field: f})
			}
		}
	}
	return out
}

// mountTool serves one registry tool as a REST operation and documents it.
// The REST input is folded into the tool's flat JSON input (path and query
// parameters beside the body fields), so all surfaces validate the same way.
func (s *Server) mountTool(t *tools.Tool) {
	params := paramsOf(t.InType)
	hasBody := t.HTTP.Method == http.MethodPost || t.HTTP.Method == http.MethodPatch || t.HTTP.Method == http.MethodPut
	path := "/v1/api" + t.HTTP.Path
	s.mux.Handle(t.HTTP.Method+" "+path, s.guard.Wrap(tools.SurfaceREST, s.restHandler(t, params, hasBody)))
	s.api.OpenAPI().AddOperation(s.operation(t, path, params, hasBody))
}

func (s *Server) restHandler(t *tools.Tool, params []param, hasBody bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		meta := tools.RequestMetaFrom(ctx)
		p, _ := auth.FromContext(ctx)
		input, pb := restInput(w, r, params, hasBody)
		if pb != nil {
			writeProblem(w, meta.TraceID, pb)
			return
		}
		idem := r.Header.Get("Idempotency-Key")
		if !validIdempotencyKey(idem) {
			writeProblem(w, meta.TraceID, problemFrom(&tools.Error{Code: problem.InvalidInput, Field: "Idempotency-Key",
				Message: "the Idempotency-Key header must be 1 to 255 printable ASCII characters",
				Errors:  []tools.FieldError{{Location: "header.Idempotency-Key", Message: "1 to 255 printable ASCII characters"}}}))
			return
		}
		// The input goes on decoded: the body was parsed once, here, and
		// its text checked; the registry validates the object as it is.
		res, err := s.reg.Invoke(ctx, tools.Call{
			Principal: p, Surface: tools.SurfaceREST, TraceID: meta.TraceID, Tool: t.Name,
			Args: input, IdempotencyKey: idem,
		})
		if err != nil {
			pb := problemFrom(err)
			relocate(pb, params)
			if pb.Status >= 500 {
				s.opts.Repeats.Error(s.log, "operation failed", err).AnErr("cause", errors.Unwrap(err)).
					Str("trace_id", meta.TraceID).Str("tool", t.Name).Send()
			}
			writeProblem(w, meta.TraceID, pb)
			return
		}
		if res.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		h := w.Header()
		h["Content-Type"] = jsonContentType
		// Past net/http's 2 KiB buffer the body would go out chunked; one
		// within it gets its length from net/http, without the allocations.
		if len(res.JSON) > bufferedBody {
			h["Content-Length"] = []string{strconv.Itoa(len(res.JSON))}
		}
		w.WriteHeader(t.HTTP.Status)
		_, _ = w.Write(res.JSON)
	}
}

// restInput folds the body, path and query of r into the tool's flat input.
// Everything the registry cannot see once the input is re-encoded is
// checked here: the body's media type and shape, text that decoding would
// mangle, and query parameters the operation does not have.
func restInput(w http.ResponseWriter, r *http.Request, params []param, hasBody bool) (map[string]any, *Problem) {
	input := map[string]any{}
	if hasBody {
		body, pb := readJSONBody(w, r)
		if pb != nil {
			return nil, pb
		}
		if len(body) > 0 {
			var pb *Problem
			if input, pb = decodeJSONObject(body); pb != nil {
				return nil, pb
			}
		}
	}
	var q url.Values // nil answers every lookup as absent, without parsing ""
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	if pb := unknownQuery(q, params); pb != nil {
		return nil, pb
	}
	for _, pr := range params {
		if _, clash := input[pr.name]; clash {
			return nil, problemFrom(tools.Invalid(pr.name, fmt.Sprintf("%q belongs in the %s, not the body", pr.name, pr.in)))
		}
		var raw string
		if pr.in == "path" {
			raw = r.PathValue(pr.name)
		} else if q.Has(pr.name) {
			raw = q.Get(pr.name)
		} else {
			continue
		}
		v, err := coerce(raw, pr.kind)
		if err == nil && !utf8.ValidString(raw) {
			err = errors.New("text must be valid UTF-8")
		}
		if err != nil {
			return nil, problem.Newf(problem.InvalidInput, "%s parameter %q: %v", pr.in, pr.name, err).
				WithField(pr.in+"."+pr.name, err.Error())
		}
		input[pr.name] = v
	}
	return input, nil
}

// readJSONBody reads a body that must be JSON when present. An empty body
// is allowed: operations whose body is optional take it as {}. With w, the
// body is limited here; without, the caller has limited it.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	if w != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, problem.Newf(problem.TooLarge, "the request body is larger than %d bytes", maxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if !problem.IsJSONMediaType(r.Header.Get("Content-Type")) {
		return nil, problem.Newf(problem.UnsupportedMediaType, "the request body is %s; this operation takes JSON",
			describeMediaType(r.Header.Get("Content-Type"))).WithHint("send Content-Type: application/json")
	}
	return body, nil
}

func describeMediaType(ct string) string {
	if strings.TrimSpace(ct) == "" {
		return "sent without a Content-Type"
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return "of an unreadable Content-Type"
}

// unknownQuery refuses query parameters the operation does not take, and
// ones given twice: silently ignoring them answers a different question
// than the one asked (?candidate_id=x listing everything).
func unknownQuery(q url.Values, params []param) *Problem {
	if len(q) == 0 {
		return nil
	}
	known := map[string]bool{}
	var names []string
	for _, pr := range params {
		if pr.in == "query" {
			known[pr.name] = true
			names = append(names, pr.name)
		}
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case !known[k]:
			hint := "this operation takes no query parameters"
			if len(names) > 0 {
				hint = "this operation's query parameters are " + strings.Join(names, ", ")
			}
			name := k
			if !utf8.ValidString(name) {
				name = strconv.QuoteToASCII(name)
			}
			return problem.Newf(problem.InvalidInput, "query parameter %q is not one this operation takes", name).
				WithField("query."+name, "unknown parameter").WithHint(hint)
		case len(q[k]) > 1:
			return problem.Newf(problem.InvalidInput, "query parameter %q is given %d times; give it once", k, len(q[k])).
				WithField("query."+k, "given more than once")
		}
	}
	return nil
}

func validIdempotencyKey(k string) bool {
	if k == "" {
		return true
	}
	if len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// relocate points errors about path and query parameters at where the
// caller put them: the registry sees one flat input and says "body.limit".
func relocate(pb *Problem, params []param) {
	for _, pr := range params {
		from, to := "body."+pr.name, pr.in+"."+pr.name
		for _, e := range pb.Errors {
			if e.Location == from || strings.HasPrefix(e.Location, from+".") || strings.HasPrefix(e.Location, from+"[") {
				e.Location = to + strings.TrimPrefix(e.Location, from)
			}
		}
		if strings.HasPrefix(pb.Detail, from) {
			pb.Detail = to + strings.TrimPrefix(pb.Detail, from)
		}
	}
}

func coerce(raw string, k reflect.Kind) (any, error) {
	switch k {
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return nil, fmt.Errorf("expected an integer")
		}
		return float64(n), nil // as a JSON number decodes, which validation expects
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, fmt.Errorf("expected true or false")
		}
		return b, nil
	default:
		return raw, nil
	}
}

// operation documents a tool in the OpenAPI spec: parameters from the
// input's path/query fields, the body from the rest, the response from the
// output type, and the scopes it needs.
func (s *Server) operation(t *tools.Tool, path string, params []param, hasBody bool) *huma.Operation {
	reg := s.api.OpenAPI().Components.Schemas
	scopes := make([]string, len(t.Policy))
	for i, sc := range t.Policy {
		scopes[i] = string(sc)
	}
	op := &huma.Operation{
		OperationID: t.Name,
		Method:      t.HTTP.Method,
		Path:        path,
		Summary:     t.Title,
		Description: t.Documented(),
		Tags:        []string{tagOf(t.Name)},
		// Scopes are in x-veref-scopes and the description: OpenAPI lists
		// scopes in security requirements only for OAuth schemes.
		Security:   []map[string][]string{{"bearerAuth": {}}, {"apiKeyAuth": {}}},
		Extensions: map[string]any{"x-veref-scopes": scopes, "x-veref-tool": t.Name},
		Responses:  map[string]*huma.Response{},
	}
	props, _ := t.InputSchema["properties"].(map[string]any)
	for _, pr := range params {
		ps := &huma.Schema{}
		if raw, ok := props[pr.name]; ok {
			remarshal(raw, ps)
		}
		op.Parameters = append(op.Parameters, &huma.Param{
			Name: pr.name, In: pr.in, Required: pr.in == "path", Schema: ps,
			Description: pr.field.Tag.Get("doc"),
		})
	}
	if t.Mutates {
		op.Parameters = append(op.Parameters, &huma.Param{
			Name: "Idempotency-Key", In: "header", Schema: &huma.Schema{Type: "string", MaxLength: intPtr(255)},
			Description: "Retrying with the same key and body returns the first result without doing the work twice; the same key with a different body is a 409.",
		})
	}
	if bt := bodyType(t.InType); hasBody && bt != nil {
		// The body is the input type without its path and query fields,
		// named after the tool so generated clients get a readable type.
		name := pascal(t.Name) + "Request"
		bs := reg.Schema(bt, true, name)
		required := len(reg.SchemaFromRef(bs.Ref).Required) > 0
		op.RequestBody = &huma.RequestBody{Required: required, Content: map[string]*huma.MediaType{
			"application/json": {Schema: bs},
		}}
	}
	op.Responses[strconv.Itoa(t.HTTP.Status)] = &huma.Response{
		Description: "OK",
		Content: map[string]*huma.MediaType{
			"application/json": {Schema: reg.Schema(t.OutType, true, t.Name+"Output")},
		},
	}
	if t.Mutates {
		op.Responses[strconv.Itoa(t.HTTP.Status)].Headers = map[string]*huma.Param{
			"Idempotent-Replayed": {Description: "true when this is the stored answer to an earlier request with the same Idempotency-Key (link tokens in it are shown as [redacted])",
				Schema: &huma.Schema{Type: "boolean"}},
		}
	}
	problem := problemSchema(reg)
	codes := []string{"401", "403", "404", "409", "422", "500", "503"}
	if hasBody {
		codes = append(codes, "413")
	}
	for _, code := range codes {
		op.Responses[code] = &huma.Response{
			Description: problemDescriptions[code],
			Content:     map[string]*huma.MediaType{"application/problem+json": {Schema: problem}},
		}
	}
	return op
}

var problemDescriptions = map[string]string{
	"401": "AUTH_MISSING, AUTH_INVALID_FORMAT, AUTH_INVALID_KEY, AUTH_REVOKED_KEY or AUTH_EXPIRED_KEY",
	"403": "SCOPE_MISSING: the key lacks the scope this operation needs",
	"404": "NOT_FOUND, also for ids of another tenant or environment",
	"409": "CONFLICT",
	"413": "TOO_LARGE: the body is over 1 MiB",
	"422": "INVALID_INPUT, naming the failing field",
	"500": "INTERNAL: quote the traceId when reporting it",
	"502": "AGENT_PROVIDER_ERROR: every model in the chain failed",
	"503": "UNAVAILABLE: storage is down; retry later",
}

// AgentRequest and AgentResponse name the agent's types in the spec; bare
// "Request" and "Response" collide with names client generators reserve.
type (
	AgentRequest  agent.Request
	AgentResponse agent.Response
)

// agentOperation documents POST /v1/api/agent, which is served by the agent
// package rather than the registry.
func (s *Server) agentOperation() *huma.Operation {
	reg := s.api.OpenAPI().Components.Schemas
	problem := problemSchema(reg)
	resp := reg.Schema(reflect.TypeFor[AgentResponse](), true, "")
	op := &huma.Operation{
		OperationID: "ask_veref",
		Method:      http.MethodPost,
		Path:        "/v1/api/agent",
		Summary:     "Ask Veref",
		Description: "Answers a plain-language request by running a model over the operations this key's scopes allow, " +
			"as this key. Calls that e-mail people, publish links, or cancel, revoke or overwrite something do not run until approved: " +
			"the answer then has status requires_approval and pendingApprovals; resume with conversationId and approvals " +
			"[{callId, decision: approve|deny, note}]. autoApprove names tools pre-approved for this request only. " +
			"Send Accept: text/event-stream to receive the run as server-sent events, streamed from the model as it writes " +
			"(step, tool_call, tool_result, answer_delta, approval_required, error, and always done last). " +
			"Answers 503 AGENT_NOT_CONFIGURED when the server has no model provider.",
		Tags:     []string{"agent"},
		Security: []map[string][]string{{"bearerAuth": {}}, {"apiKeyAuth": {}}},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"application/json": {Schema: reg.Schema(reflect.TypeFor[AgentRequest](), true, "")},
		}},
		Responses: map[string]*huma.Response{
			"200": {Description: "The answer, the tool calls made and token usage", Content: map[string]*huma.MediaType{
				"application/json":  {Schema: resp},
				"text/event-stream": {Schema: &huma.Schema{Type: "string", Description: "server-sent events; the done event carries the JSON response"}},
			}},
		},
	}
	for _, code := range []string{"401", "403", "404", "409", "413", "422", "500", "502", "503"} {
		op.Responses[code] = &huma.Response{Description: problemDescriptions[code],
			Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problem}}}
	}
	op.Responses["403"].Description = "SCOPE_MISSING: the conversation holds results, or a pending call needs scopes, this key does not have"
	op.Responses["404"].Description = "NOT_FOUND: the conversationId is not one of this key's recruiter's conversations, or a callId is not pending in it"
	op.Responses["409"].Description = "APPROVAL_EXPIRED: a pending call waited too long; CONFLICT: a call was already decided, calls still wait for a decision, or another request continued the conversation"
	op.Responses["503"].Description = "AGENT_NOT_CONFIGURED, or AGENT_PROVIDER_ERROR when the provider is overloaded, or UNAVAILABLE"
	return op
}

// bodyType is the struct of t's fields that travel in the body, or nil when
// none do.
func bodyType(t reflect.Type) reflect.Type {
	var fields []reflect.StructField
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			switch {
			case f.Anonymous && f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			case !f.IsExported() || f.Tag.Get("path") != "" || f.Tag.Get("query") != "":
			default:
				f.Index, f.Offset = nil, 0
				fields = append(fields, f)
			}
		}
	}
	walk(t)
	if len(fields) == 0 {
		return nil
	}
	return reflect.StructOf(fields)
}

func pascal(snake string) string {
	var b strings.Builder
	for _, part := range strings.Split(snake, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func tagOf(name string) string {
	head, _, _ := strings.Cut(name, "_")
	if head == "whoami" {
		return "identity"
	}
	return head
}

func remarshal(from any, to any) {
	b, _ := json.Marshal(from)
	_ = json.Unmarshal(b, to)
}

func intPtr(n int) *int { return &n }
