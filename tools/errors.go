package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
)

// Error is an operation failure a caller can act on.
type Error struct {
	Code    problem.Code `json:"code"`
	Message string       `json:"message"`
	Field   string       `json:"field,omitempty"`
	Hint    string       `json:"hint,omitempty"`
	Errors  []FieldError `json:"errors,omitempty"`
	// AuditID names the audit event of a refused or failed MCP or agent call.
	AuditID string `json:"auditId,omitempty"`
	// cause is the internal error behind UNAVAILABLE and INTERNAL: kept for
	// the log, never shown to callers.
	cause error
}

// Unwrap gives the internal cause to loggers.
func (e *Error) Unwrap() error { return e.cause }

// FieldError locates one invalid value.
type FieldError = problem.FieldError

// Problem is e as the problem document every HTTP surface answers with:
// the one place an operation's error becomes one.
func (e *Error) Problem() *problem.Problem {
	p := problem.New(e.Code, e.Message).WithHint(e.Hint)
	p.AuditID = e.AuditID
	for _, fe := range e.Errors {
		p.Errors = append(p.Errors, &fe)
	}
	return p
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return string(e.Code) + ": " + e.Message
}

// NotFound is also the answer for another tenant's or environment's ids.
func NotFound(what, id string) *Error {
	return &Error{Code: problem.NotFound, Message: fmt.Sprintf("%s %q was not found", what, id)}
}

// Invalid names the failing field; "" means the input as a whole.
func Invalid(field, msg string) *Error {
	loc := "body"
	if field != "" {
		loc += "." + field
	}
	return &Error{Code: problem.InvalidInput, Message: msg, Field: field,
		Errors: []FieldError{{Location: loc, Message: msg}}}
}

// relocate moves locations under from (the REST body, where operations
// say their fields are) to under to: MCP and the agent send "arguments".
func (e *Error) relocate(from, to string) {
	move := func(s string) string {
		if s == from || strings.HasPrefix(s, from+".") || strings.HasPrefix(s, from+"[") {
			return to + strings.TrimPrefix(s, from)
		}
		return s
	}
	if len(e.Errors) > 0 {
		errs := make([]FieldError, len(e.Errors))
		for i, fe := range e.Errors {
			fe.Location = move(fe.Location)
			errs[i] = fe
		}
		e.Errors = errs
	}
	e.Message = move(e.Message)
}

// Conflict explains why the state does not allow the call.
func Conflict(msg string) *Error { return &Error{Code: problem.Conflict, Message: msg} }

// AsError turns any error into an *Error, mapping store errors and hiding
// internals: a storage failure says "try again", never a stack trace.
func AsError(err error) *Error {
	var te *Error
	var ae *auth.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return te
	case errors.As(err, &ae):
		return &Error{Code: ae.Code, Message: ae.Detail, Hint: ae.Hint}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Code: problem.NotFound, Message: "not found"}
	case errors.Is(err, store.ErrConflict):
		return &Error{Code: problem.Conflict, Message: "the record was changed by another request; fetch it and try again"}
	case errors.Is(err, store.ErrBadCursor):
		return Invalid("cursor", "the cursor is not one this API issued; start again without it")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Code: problem.Unavailable, Message: "the request timed out or was cancelled", cause: err, Hint: retrySafe}
	case errors.Is(err, store.ErrUnavailable):
		return &Error{Code: problem.Unavailable, Message: "storage is unavailable; try again shortly", cause: err, Hint: retrySafe}
	default:
		return &Error{Code: problem.Internal, Message: "an internal error occurred; quote the trace id when reporting it", cause: err}
	}
}

// retrySafe is the hint of every storage 503. Such a failure can come at
// commit, when the change may or may not have been saved; the
// Idempotency-Key makes the retry safe either way.
const retrySafe = "retry after Retry-After seconds; a change may or may not have been saved, so send the same Idempotency-Key: " +
	"if the first attempt was saved you get its result, not a second copy"
