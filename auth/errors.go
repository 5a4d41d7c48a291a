package auth

import "fmt"

// Stable machine codes, shared by every surface (see DESIGN.md "Errors").
const (
	CodeMissing       = "AUTH_MISSING"
	CodeInvalidFormat = "AUTH_INVALID_FORMAT"
	CodeInvalidKey    = "AUTH_INVALID_KEY"
	CodeRevokedKey    = "AUTH_REVOKED_KEY"
	CodeExpiredKey    = "AUTH_EXPIRED_KEY"
	CodeScopeMissing  = "SCOPE_MISSING"
	CodeUnavailable   = "UNAVAILABLE"
)

// Error is an authentication or authorization failure with its HTTP status
// and stable code; surfaces render it in their own way.
type Error struct {
	Status int
	Code   string
	Detail string
	Hint   string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Detail) }

// ScopeError is the 403 for a principal that lacks every scope in p.
func ScopeError(p Policy) *Error {
	return &Error{Status: 403, Code: CodeScopeMissing,
		Detail: "this API key lacks the scope for this operation; it needs " + p.String(),
		Hint:   "create a key with one of these scopes: " + p.String()}
}
