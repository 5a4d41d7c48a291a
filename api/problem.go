package api

import (
	"errors"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
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
				p.Errors = append(p.Errors, &problem.FieldError{Location: ed.Location, Message: ed.Message, Value: ed.Value})
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

// problemFrom converts any error from auth or tools into a Problem.
func problemFrom(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		return problem.New(ae.Code, ae.Detail).WithHint(ae.Hint)
	}
	te := tools.AsError(err)
	p = problem.New(te.Code, te.Message).WithHint(te.Hint)
	p.AuditID = te.AuditID
	for _, fe := range te.Errors {
		p.Errors = append(p.Errors, &problem.FieldError{Location: fe.Location, Message: fe.Message, Value: fe.Value})
	}
	return p
}

// writeProblem is for handlers outside Huma's response path.
func writeProblem(w http.ResponseWriter, traceID string, p *Problem) {
	problem.Write(w, traceID, p)
}
