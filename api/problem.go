package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/telemetry"
	"github.com/verefwork/veref/tools"
)

// Problem is the one problem document, named here for the OpenAPI schema.
type Problem = problem.Problem

func init() {
	// Huma's own errors (body validation on the management routes, malformed
	// JSON) use the same shape and codes as ours.
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		p := problem.New(problem.FromStatus(status), msg)
		for _, e := range errs {
			var d huma.ErrorDetailer
			if errors.As(e, &d) {
				ed := d.ErrorDetail()
				fe := &problem.FieldError{Location: ed.Location, Message: ed.Message, Value: ed.Value}
				if ed.Location == "body" {
					fe.Value = nil // Huma echoes the whole body here
				}
				p.Errors = append(p.Errors, fe)
			} else if e != nil {
				p.Errors = append(p.Errors, &problem.FieldError{Message: e.Error()})
			}
		}
		return p
	}
}

// problemSchema registers the Problem schema with every code as an enum,
// so generated clients get the codes as constants.
func problemSchema(reg huma.Registry) *huma.Schema {
	ref := reg.Schema(reflect.TypeFor[Problem](), true, "Problem")
	if code := reg.SchemaFromRef(ref.Ref).Properties["code"]; code != nil && len(code.Enum) == 0 {
		for _, in := range problem.All() {
			code.Enum = append(code.Enum, string(in.Code))
		}
	}
	return ref
}

// problemFrom converts any error into a Problem: one already, or what
// tools.AsError makes of it (auth and store errors included).
func problemFrom(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return tools.AsError(err).Problem()
}

// writeProblem is for handlers outside Huma's response path.
func writeProblem(w http.ResponseWriter, traceID string, p *Problem) {
	problem.Write(w, traceID, p)
}

type traceKey struct{}

// hardenHuma gives every route of a Huma API what the REST surface has: a
// trace id on every answer, in the header and in problems, JSON bodies
// only, and no text that decoding would mangle.
func hardenHuma(cfg *huma.Config) func(huma.API) {
	cfg.Transformers = append(cfg.Transformers, func(ctx huma.Context, _ string, v any) (any, error) {
		if p, ok := v.(*Problem); ok && p.TraceID == "" {
			p.TraceID, _ = ctx.Context().Value(traceKey{}).(string)
		}
		return v, nil
	})
	return func(a huma.API) {
		a.UseMiddleware(func(ctx huma.Context, next func(huma.Context)) {
			traceID := telemetry.TraceID(ctx.Context())
			ctx.SetHeader("X-Trace-Id", traceID)
			ctx = huma.WithValue(ctx, traceKey{}, traceID)
			r, w := humago.Unwrap(ctx)
			if pb := checkParams(ctx.Operation(), r); pb != nil {
				writeProblem(w, traceID, pb)
				return
			}
			if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
				body, pb := readJSONBody(w, r)
				if pb == nil && len(body) > 0 {
					pb = checkJSONObject(body)
				}
				if pb != nil {
					writeProblem(w, traceID, pb)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			next(ctx)
		})
	}
}

// checkParams refuses what a Huma route would pass on to storage: query
// parameters the operation does not take, and path or query text that is
// not valid UTF-8 or holds NUL (which PostgreSQL cannot compare).
func checkParams(op *huma.Operation, r *http.Request) *Problem {
	var known []param
	for _, p := range op.Parameters {
		if p.In == "query" {
			known = append(known, param{name: p.Name, in: "query"})
		}
	}
	if pb := unknownQuery(r.URL.Query(), known); pb != nil {
		return pb
	}
	for _, p := range op.Parameters {
		var vals []string
		switch p.In {
		case "path":
			vals = []string{r.PathValue(p.Name)}
		case "query":
			vals = r.URL.Query()[p.Name]
		}
		for _, v := range vals {
			why := ""
			switch {
			case !utf8.ValidString(v):
				why = "text must be valid UTF-8"
			case strings.ContainsRune(v, 0):
				why = "text may not contain NUL characters"
			}
			if why != "" {
				return problem.Newf(problem.InvalidInput, "%s parameter %q: %s", p.In, p.Name, why).WithField(p.In+"."+p.Name, why)
			}
		}
	}
	return nil
}

// checkJSONObject refuses a body that is not a JSON object or holds text
// that decoding would mangle.
func checkJSONObject(body []byte) *Problem {
	_, pb := decodeJSONObject(body)
	return pb
}

// decodeJSONObject is checkJSONObject returning the object it decoded, so
// REST parses a body once.
func decodeJSONObject(body []byte) (map[string]any, *Problem) {
	if err := tools.CheckText(body, "body"); err != nil {
		return nil, problemFrom(err)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, problem.New(problem.InvalidInput, "the request body is not valid JSON: "+err.Error()).
			WithField("body", "not valid JSON")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, problem.New(problem.InvalidInput, "the request body must be a JSON object, not "+tools.JSONKind(v)).
			WithField("body", "must be a JSON object").WithHint("send {} when there is nothing to set")
	}
	return m, nil
}
