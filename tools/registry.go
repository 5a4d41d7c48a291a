// Package tools defines every Veref operation once. REST, MCP and the agent
// are adapters over Registry.Invoke, which is the single place that checks
// scopes, validates input, opens the transaction and writes the audit event.
// Nothing here knows about HTTP, MCP or models.
package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
)

// Surfaces a call can come from; recorded on audit events.
const (
	SurfaceREST  = store.SurfaceREST
	SurfaceMCP   = store.SurfaceMCP
	SurfaceAgent = store.SurfaceAgent
)

func init() {
	// Huma makes slices nullable by default, which lets an explicit null
	// through "required" and "minItems" (referees: null started a request
	// with no referees). Veref never means null by an array.
	huma.DefaultArrayNullable = false
}

// Binding places a tool on the REST surface. Path parameters and query
// parameters are fields of the input type tagged `path:"…"` / `query:"…"`;
// the remaining fields form the JSON body.
type Binding struct {
	Method string
	Path   string // relative to /v1/api
	Status int    // success status; 200 when zero
}

// Spec is everything about a tool except its types and handler.
type Spec struct {
	Name        string
	Title       string
	Description string
	Policy      auth.Policy
	// ReadOnly is the MCP hint that the tool changes nothing. Mutates is
	// what the registry acts on: a mutating call runs in a transaction with
	// its audit event and honours Idempotency-Key. A tool declares one or
	// the other, and Add refuses both or neither.
	ReadOnly    bool
	Mutates     bool
	Destructive bool
	Idempotent  bool
	// OpenWorld marks effects outside Veref: e-mail to people, links anyone
	// holding them can open. Clients that auto-approve on hints must not
	// take these for contained actions.
	OpenWorld bool
	// OpenWorldWhen names a boolean input field: the tool reaches outside
	// Veref only when a call sets it (references_start with sendInvitations).
	// Empty means every call is open-world when OpenWorld is set.
	OpenWorldWhen string
	HTTP          Binding
	// Target is the audit target type ("candidate", "reference_request", …).
	Target string
}

// Tool is a registered operation with its derived schemas.
type Tool struct {
	Spec
	InType  reflect.Type
	OutType reflect.Type
	// InputSchema and OutputSchema are self-contained JSON Schemas (no $ref),
	// ready for MCP and model function declarations.
	InputSchema  map[string]any
	OutputSchema map[string]any

	input *inputSchema
	run   func(ctx context.Context, p auth.Principal, in any) (any, error)
}

// Registry holds the tools and what Invoke needs to run them.
type Registry struct {
	store   store.Store
	now     func() time.Time
	schemas huma.Registry
	tools   map[string]*Tool
	order   []string
	reads   AuditQueue
	log     zerolog.Logger
}

// AuditQueue takes audit events to write later, in batches, without losing
// any (api.AuditWriter).
type AuditQueue interface {
	Record(store.AuditEvent)
}

// QueueReadAudits sends the audit events of successful reads (MCP and the
// agent) to q instead of a transaction of their own, so that a read costs
// what it costs on REST. Mutations still write their event in their own
// transaction, and refusals are written at once.
func (r *Registry) QueueReadAudits(q AuditQueue) { r.reads = q }

// NewRegistry returns an empty registry over st.
func NewRegistry(st store.Store, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{
		store:   st,
		now:     now,
		schemas: huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer),
		tools:   map[string]*Tool{},
		log:     defaultLog(),
	}
}

// Add registers one operation. The input and output schemas come from the Go
// types, so the contract cannot drift from the code.
func Add[In, Out any](r *Registry, s Spec, h func(ctx context.Context, p auth.Principal, in In) (Out, error)) {
	if _, dup := r.tools[s.Name]; dup {
		panic("tools: duplicate tool " + s.Name)
	}
	switch {
	case s.Mutates && s.ReadOnly:
		panic("tools: " + s.Name + " mutates yet is marked read-only")
	case !s.Mutates && !s.ReadOnly:
		panic("tools: " + s.Name + " must declare Mutates or ReadOnly")
	}
	if s.HTTP.Status == 0 {
		s.HTTP.Status = 200
	}
	t := &Tool{
		Spec:    s,
		InType:  reflect.TypeFor[In](),
		OutType: reflect.TypeFor[Out](),
		run: func(ctx context.Context, p auth.Principal, in any) (any, error) {
			return h(ctx, p, *(in.(*In)))
		},
	}
	t.input = newInputSchema(r.schemas, t.InType, s.Name+"Input")
	t.InputSchema = inline(r.schemas, t.input.schema)
	t.OutputSchema = inline(r.schemas, r.schemas.Schema(t.OutType, false, s.Name+"Output"))
	r.tools[s.Name] = t
	r.order = append(r.order, s.Name)
}

// Documented is the tool's description with the scopes that allow it, as
// REST docs and MCP's tools/list show it.
func (t *Tool) Documented() string {
	return t.Description + "\n\nRequires: " + t.Policy.String() + "."
}

// Tools lists every tool in registration order.
func (r *Registry) Tools() []*Tool {
	out := make([]*Tool, 0, len(r.order))
	for _, n := range r.order {
		out = append(out, r.tools[n])
	}
	return out
}

// Allowed lists the tools p's scopes allow, for surfaces that show a menu.
// It is a convenience, not the boundary: Invoke checks again.
func (r *Registry) Allowed(p auth.Principal) []*Tool {
	var out []*Tool
	for _, t := range r.Tools() {
		if r.Permits(p, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

// Permits reports whether p may call the tool named name: false for a tool
// that does not exist too. Surfaces ask this for their menus and filters;
// the registry alone reads policies, and Invoke checks again regardless.
func (r *Registry) Permits(p auth.Principal, name string) bool {
	t, ok := r.tools[name]
	return ok && p.Can(t.Policy)
}

// OpenWorldFor reports whether a call with this input reaches outside
// Veref. Input that cannot be read counts as reaching out: the answer gates
// approvals, and a wrong "no" would let an e-mail through.
func (t *Tool) OpenWorldFor(input json.RawMessage) bool {
	if !t.OpenWorld {
		return false
	}
	if t.OpenWorldWhen == "" {
		return true
	}
	var m map[string]any
	if err := json.Unmarshal(input, &m); err != nil {
		return true
	}
	v, present := m[t.OpenWorldWhen]
	return present && v != false
}

// Lookup finds a tool by name.
func (r *Registry) Lookup(name string) (*Tool, bool) {
	t, ok := r.tools[name]
	return t, ok
}

// Call is one invocation from any surface.
type Call struct {
	Principal auth.Principal
	Surface   store.Surface
	TraceID   string
	Tool      string
	Input     json.RawMessage // a JSON object; empty means {}
	// Args, when set, is the input already decoded from JSON (as
	// encoding/json decodes into any) and its text checked (CheckText):
	// a surface that had to parse it does not pay for a second parse.
	Args           map[string]any
	IdempotencyKey string
	// AuditData is added to the call's audit event: how a surface decided
	// to run it (an approval and who gave it).
	AuditData map[string]any
}

// Result is a successful invocation.
type Result struct {
	Output   any             // the handler's typed output
	JSON     json.RawMessage // Output as JSON
	AuditID  string          // empty when the call was not audited
	Replayed bool            // an idempotent retry answered from the first result
}

type queriesKey struct{}

// Q returns the queries a handler must use: the transaction Invoke opened, so
// its writes and the audit event commit or roll back together.
func Q(ctx context.Context) store.Queries {
	return ctx.Value(queriesKey{}).(store.Queries)
}

// Invoke runs a tool for a principal. The principal is the only source of
// tenancy; nothing in the input can change it.
func (r *Registry) Invoke(ctx context.Context, c Call) (res Result, err error) {
	name := c.Tool
	if _, ok := r.tools[name]; !ok {
		name = "unknown" // the caller's string must not become a label or span name
	}
	ctx, span := telemetry.Start(ctx, "tool "+name,
		attribute.String("veref.tool", name), attribute.String("veref.surface", string(c.Surface)))
	defer func() {
		outcome := "ok"
		if err != nil {
			outcome = string(AsError(err).Code)
			span.SetAttributes(attribute.String("veref.code", outcome))
		}
		metrics.ToolCall(name, string(c.Surface), outcome)
		telemetry.End(span, err)
	}()
	// Runs before the deferral above, so a panic counts as INTERNAL. Every
	// surface gets the same answer: REST's guard would catch it, but mcp-go
	// would send the panic's text to the client and log nothing.
	defer func() {
		if v := recover(); v != nil {
			r.log.Error().Str("tool", name).Str("surface", string(c.Surface)).Str("trace_id", c.TraceID).
				Str("panic", fmt.Sprint(v)).Bytes("stack", debug.Stack()).Msg("tool panicked")
			res, err = Result{}, &Error{Code: problem.Internal, Message: "an unexpected failure on the server"}
		}
	}()
	return r.invoke(ctx, c)
}

func (r *Registry) invoke(ctx context.Context, c Call) (Result, error) {
	t, ok := r.tools[c.Tool]
	if !ok {
		// A model or MCP client asking for a tool that does not exist is
		// worth a trail too.
		t = r.toolOrStub(c.Tool)
		return Result{}, r.fail(ctx, c, t, &Error{Code: problem.NotFound, Message: fmt.Sprintf("unknown tool %q", t.Name)})
	}
	// Reads from MCP and the agent are audited too: a model's reads are
	// worth a trail. REST reads are covered by usage rows.
	audited := t.Mutates || c.Surface != SurfaceREST
	if !c.Principal.Can(t.Policy) {
		se := auth.ScopeError(t.Policy)
		return Result{}, r.fail(ctx, c, t, &Error{Code: se.Code, Message: se.Detail, Hint: se.Hint})
	}
	in, err := t.input.decode(c.Input, c.Args)
	if err != nil {
		return Result{}, r.fail(ctx, c, t, AsError(err))
	}
	var reqHash string
	if c.IdempotencyKey != "" && t.Mutates {
		reqHash = hashRequest(t.Name, in)
		if res, done, err := r.replay(ctx, c, t, reqHash); done || err != nil {
			return res, err
		}
	}

	var res Result
	queued := !t.Mutates && r.reads != nil
	run := func(q store.Queries) error {
		out, err := t.run(context.WithValue(ctx, queriesKey{}, q), c.Principal, in)
		if err != nil {
			return err
		}
		if res.JSON, err = json.Marshal(out); err != nil {
			return err
		}
		res.Output = out
		if audited {
			ev := r.event(c, t, store.OutcomeOK, target(t, in, out))
			if queued {
				r.reads.Record(ev)
			} else if err := q.InsertAudit(ctx, ev); err != nil {
				return err
			}
			res.AuditID = ev.ID
		}
		if reqHash != "" {
			return q.InsertIdempotency(ctx, store.TenancyOf(c.Principal), store.IdempotencyRecord{
				KeyID: c.Principal.KeyID, Key: c.IdempotencyKey, Operation: t.Name,
				RequestHash: reqHash, Status: t.HTTP.Status, Response: RedactLinks(res.JSON), CreatedAt: r.now(),
			})
		}
		return nil
	}
	if audited && !queued {
		err = r.store.InTx(ctx, run)
	} else {
		err = run(r.store)
	}
	if err != nil {
		if reqHash != "" && errors.Is(err, store.ErrConflict) {
			// A concurrent retry with the same key won the race; answer as it did.
			if res, done, rerr := r.replay(ctx, c, t, reqHash); done || rerr != nil {
				return res, rerr
			}
		}
		return Result{}, r.fail(ctx, c, t, AsError(err))
	}
	return res, nil
}

// Refuse records a call that a surface declined without running it (a
// repeated call, one past the run's budget), so the audit trail holds every
// call a model or client made. It returns e with the audit id set.
func (r *Registry) Refuse(ctx context.Context, c Call, e *Error) *Error {
	return r.fail(ctx, c, r.toolOrStub(c.Tool), e).(*Error)
}

// Record writes an audit event about a call without running it (a call
// paused for approval, the approval or denial of one) and returns its id.
func (r *Registry) Record(ctx context.Context, c Call, outcome store.Outcome) (string, error) {
	ev := r.event(c, r.toolOrStub(c.Tool), outcome, "")
	if err := r.writeAudit(ctx, ev); err != nil {
		return "", AsError(err)
	}
	return ev.ID, nil
}

// toolOrStub names an unknown tool for the audit row; the name is the
// caller's, so it is truncated (on a character boundary) and made
// storable on every backend.
func (r *Registry) toolOrStub(name string) *Tool {
	if t, ok := r.tools[name]; ok {
		return t
	}
	name = store.StorableText(name)
	for i := range name {
		if i > 100 {
			name = name[:i]
			break
		}
	}
	return &Tool{Spec: Spec{Name: name}}
}

// replay answers a retried POST from its first result.
func (r *Registry) replay(ctx context.Context, c Call, t *Tool, reqHash string) (Result, bool, error) {
	rec, err := r.store.GetIdempotency(ctx, store.TenancyOf(c.Principal), c.Principal.KeyID, c.IdempotencyKey)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, true, AsError(err)
	}
	if rec.Operation != t.Name || rec.RequestHash != reqHash {
		return Result{}, true, &Error{Code: problem.Conflict,
			Message: "this Idempotency-Key was already used with a different request",
			Hint:    "use a new Idempotency-Key for a new request"}
	}
	out := reflect.New(t.OutType)
	if err := json.Unmarshal(rec.Response, out.Interface()); err != nil {
		return Result{}, true, AsError(err)
	}
	return Result{Output: out.Elem().Interface(), JSON: rec.Response, Replayed: true}, true, nil
}

// fail records a refused or failed MCP or agent call outside the
// rolled-back transaction, then returns the error. REST failures change
// nothing and are covered by usage rows. The row is never dropped in
// silence (see keepAudit).
func (r *Registry) fail(ctx context.Context, c Call, t *Tool, e *Error) error {
	f := *e // the caller's error value may be shared
	if c.Surface != SurfaceREST {
		f.relocate("body", "arguments")
		ev := r.event(c, t, store.Outcome(e.Code), "")
		if r.keepAudit(ctx, ev) == nil {
			f.AuditID = ev.ID
		}
	}
	return &f
}

func (r *Registry) event(c Call, t *Tool, outcome store.Outcome, targetID string) store.AuditEvent {
	data := map[string]any{"tool": t.Name}
	if len(c.Input) > 0 && len(c.Input) <= 4096 {
		// As sent when both backends can store it as JSON, else as a
		// string with data.inputEncoding (store.AuditInput).
		if in, enc := store.AuditInput(c.Input); enc == "" {
			data["input"] = in
		} else {
			data["input"], data["inputEncoding"] = in, enc
		}
	}
	if c.IdempotencyKey != "" {
		data["idempotencyKey"] = c.IdempotencyKey
	}
	for k, v := range c.AuditData {
		if _, taken := data[k]; !taken {
			data[k] = v
		}
	}
	return store.NewAuditEvent(store.TenancyOf(c.Principal), store.Actor{Kind: store.ActorAPIKey, ID: c.Principal.KeyID},
		c.Surface, c.TraceID, t.Name, r.now()).On(t.Target, targetID).WithOutcome(outcome).WithData(data)
}

// JSONKind names a decoded JSON value's type for an error message.
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return "an object"
	}
}

// Targeter lets an output name the record an audit event is about.
type Targeter interface{ AuditTarget() string }

func target(t *Tool, in, out any) string {
	if tg, ok := out.(Targeter); ok {
		return tg.AuditTarget()
	}
	// The output names the record made or read (a report generated from a
	// request is about the report); failing that, the input's id.
	for _, v := range []reflect.Value{reflect.ValueOf(out), reflect.ValueOf(in).Elem()} {
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("ID"); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
				return f.String()
			}
		}
	}
	return ""
}

func hashRequest(tool string, in any) string {
	// Over the decoded, typed input: whitespace, key order and spelling
	// (1 or 1.0, escapes) do not make a retry look different, and nothing
	// is parsed again to hash it.
	canon, _ := json.Marshal(in)
	h := sha256.Sum256(append([]byte(tool+"\x00"), canon...))
	return hex.EncodeToString(h[:])
}

// inline resolves every $ref so the schema stands alone, as MCP clients and
// model providers expect.
func inline(reg huma.Registry, s *huma.Schema) map[string]any {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return resolve(reg, m, 0).(map[string]any)
}

func resolve(reg huma.Registry, v any, depth int) any {
	if depth > 32 {
		return map[string]any{"type": "object"}
	}
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			if s := reg.SchemaFromRef(ref); s != nil {
				return resolve(reg, inline0(s), depth+1)
			}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = resolve(reg, val, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = resolve(reg, val, depth+1)
		}
		return out
	default:
		return v
	}
}

func inline0(s *huma.Schema) map[string]any {
	b, _ := json.Marshal(s)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
