package auth

import (
	"fmt"

	"github.com/verefwork/veref/problem"
)

// Error is an authentication or authorization failure with its stable
// code; the code alone decides the HTTP status (problem's table), and each
// surface renders it in its own way.
type Error struct {
	Code   problem.Code
	Detail string
	Hint   string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Detail) }

// ScopeError is the refusal for a principal that lacks every scope in p.
func ScopeError(p Policy) *Error {
	return &Error{Code: problem.ScopeMissing,
		Detail: "this API key lacks the scope for this operation; it needs " + p.String(),
		Hint:   "create a key with one of these scopes: " + p.String()}
}
