// Package problem is Veref's one error model: every stable error code, the
// one table that gives each its HTTP status, and the RFC 9457 problem
// document with its writer and decoder. Every surface (REST, key
// management, the public link routes, MCP, the agent and the CLI) speaks
// it. It imports nothing of Veref's, so every package may import it.
package problem

import (
	"net/http"
	"sort"
)

// Code is a stable, machine-readable error code. Clients branch on it;
// once published it never changes meaning.
type Code string

// The codes. Adding one is one line here and one row in table below.
const (
	AuthMissing        Code = "AUTH_MISSING"
	AuthInvalidFormat  Code = "AUTH_INVALID_FORMAT"
	AuthInvalidKey     Code = "AUTH_INVALID_KEY"
	AuthRevokedKey     Code = "AUTH_REVOKED_KEY"
	AuthExpiredKey     Code = "AUTH_EXPIRED_KEY"
	AuthSuspendedKey   Code = "AUTH_SUSPENDED_KEY"
	AuthInvalidSession Code = "AUTH_INVALID_SESSION"

	ScopeMissing     Code = "SCOPE_MISSING"
	RecruiterUnknown Code = "RECRUITER_UNKNOWN"
	IPNotAllowed     Code = "IP_NOT_ALLOWED"
	AdminRequired    Code = "ADMIN_REQUIRED"
	OriginNotAllowed Code = "ORIGIN_NOT_ALLOWED"

	NotFound             Code = "NOT_FOUND"
	MethodNotAllowed     Code = "METHOD_NOT_ALLOWED"
	Conflict             Code = "CONFLICT"
	TooLarge             Code = "TOO_LARGE"
	UnsupportedMediaType Code = "UNSUPPORTED_MEDIA_TYPE"
	InvalidInput         Code = "INVALID_INPUT"

	LinkInvalid Code = "LINK_INVALID"
	LinkUsed    Code = "LINK_USED"
	LinkExpired Code = "LINK_EXPIRED"
	LinkRevoked Code = "LINK_REVOKED"

	// Outcomes of a tool call the agent itself declined; they reach the
	// model and the audit log, not an HTTP response of their own.
	DuplicateCall    Code = "DUPLICATE_CALL"
	NotExecuted      Code = "NOT_EXECUTED"
	ApprovalRequired Code = "APPROVAL_REQUIRED"
	Denied           Code = "DENIED"
	ApprovalExpired  Code = "APPROVAL_EXPIRED"

	RateLimited        Code = "RATE_LIMITED"
	AgentQuotaExceeded Code = "AGENT_QUOTA_EXCEEDED"

	Internal                 Code = "INTERNAL"
	Unavailable              Code = "UNAVAILABLE"
	AgentNotConfigured       Code = "AGENT_NOT_CONFIGURED"
	AgentProviderError       Code = "AGENT_PROVIDER_ERROR"
	AgentProviderUnavailable Code = "AGENT_PROVIDER_UNAVAILABLE"
	AgentProviderTimeout     Code = "AGENT_PROVIDER_TIMEOUT"

	// RFC 8628 device authorization (veref login). Their spelling is the
	// RFC's, which OAuth clients already understand.
	AuthorizationPending Code = "authorization_pending"
	SlowDown             Code = "slow_down"
	AccessDenied         Code = "access_denied"
	ExpiredToken         Code = "expired_token"
)

// Info is one row of the table: the status a code always answers with and
// what it means, for the docs.
type Info struct {
	Code    Code
	Status  int
	Meaning string
	Action  string
}

// table is THE code → status table. Nothing else decides an error status.
var table = []Info{
	{AuthMissing, 401, "No API key or session was sent.", "Send Authorization: Bearer vrf_… or x-api-key: vrf_…."},
	{AuthInvalidFormat, 401, "The credential is not shaped like a Veref key, or two headers disagree.", "Send the whole key in one header."},
	{AuthInvalidKey, 401, "The key is not recognised by this server.", "Check that the key was copied whole and belongs to this server."},
	{AuthRevokedKey, 401, "The key was revoked.", "Ask a tenant admin for a new key."},
	{AuthExpiredKey, 401, "The key has expired.", "Create a new key."},
	{AuthSuspendedKey, 401, "The key is suspended by a tenant admin.", "Ask a tenant admin to resume it."},
	{AuthInvalidSession, 401, "The console session is missing, expired or not valid for this server.", "Sign in again."},
	{ScopeMissing, 403, "The key lacks every scope the operation accepts.", "Create a key with one of the scopes named in detail."},
	{RecruiterUnknown, 403, "The signed-in user is not a recruiter of this tenant.", "Ask a tenant admin to add you."},
	{IPNotAllowed, 403, "The key may not be used from this address.", "Call from an address on the key's allow-list, or change the list."},
	{AdminRequired, 403, "Only a tenant admin may do this.", "Ask an admin of the tenant."},
	{OriginNotAllowed, 403, "The browser origin is not on the server's allow-list.", "Add the origin to VEREF_MCP_ALLOWED_ORIGINS."},
	{NotFound, 404, "No such resource or route; ids of other tenants and environments answer the same.", "Check the id, the key's environment, and the path."},
	{MethodNotAllowed, 405, "The route exists but not with this method.", "Use a method listed in the Allow header."},
	{Conflict, 409, "The resource's state does not allow the call, or an idempotency key was reused with another body.", "Fetch the resource and act on its current state."},
	{LinkInvalid, 404, "The invitation or share link is not valid.", "Check that the link was copied whole."},
	{LinkUsed, 409, "The invitation was already answered.", "Ask the recruiter for a new link."},
	{LinkExpired, 410, "The link has expired.", "Ask the recruiter for a new link."},
	{LinkRevoked, 410, "The link was replaced or withdrawn.", "Ask the recruiter for a new link."},
	{DuplicateCall, 409, "The agent refused a tool call identical to one it already made in the run.", "Reuse the earlier result."},
	{NotExecuted, 409, "The agent did not run this tool call (a budget ran out, or an earlier call failed).", "Ask again; the run lists what did run."},
	{ApprovalRequired, 409, "The agent's tool call waits for the caller's approval.", "Approve or deny it with the conversationId and callId."},
	{Denied, 403, "The caller denied the agent's tool call.", "Nothing was run; ask again if that was a mistake."},
	{ApprovalExpired, 409, "The agent's tool call waited too long for approval; nothing was run.", "Send a new message in the conversation; the model hears the call did not run."},
	{TooLarge, 413, "The request body is over the limit.", "Send a smaller body."},
	{UnsupportedMediaType, 415, "The body is not JSON.", "Send Content-Type: application/json."},
	{InvalidInput, 422, "The input is not valid; errors[] names each failing field.", "Fix the fields named in errors[]."},
	{RateLimited, 429, "Too many requests for this key.", "Wait for the time in Retry-After, then retry."},
	{AgentQuotaExceeded, 429, "The key's agent token budget is spent.", "Wait for the budget to reset, or raise it."},
	{Internal, 500, "An unexpected failure on the server.", "Retry; if it persists, report the traceId."},
	{AgentProviderError, 502, "Every model in the agent's chain failed.", "Retry; if it persists, check the model chain."},
	{Unavailable, 503, "Storage or a dependency is unavailable.", "Retry after `Retry-After` seconds. A change may or may not have been saved (the failure can come at commit): retry it with the same `Idempotency-Key`, which answers a saved first attempt with its result instead of making a second copy. The CLI does this itself."},
	{AgentNotConfigured, 503, "The server has no model provider for Ask Veref.", "The operator must set OPENROUTER_API_KEY."},
	{AgentProviderUnavailable, 503, "The model provider is overloaded or rate-limited.", "Retry shortly."},
	{AgentProviderTimeout, 504, "No model answered in time.", "Retry, perhaps with a simpler request."},
	{AuthorizationPending, 400, "The device login has not been approved yet.", "Keep polling at the given interval."},
	{SlowDown, 400, "The device login is being polled too often.", "Poll 5 seconds less often."},
	{AccessDenied, 400, "The device login was refused.", "Start the login again."},
	{ExpiredToken, 400, "The device code expired before it was approved.", "Start the login again."},
}

var byCode = func() map[Code]Info {
	m := make(map[Code]Info, len(table))
	for _, in := range table {
		if _, dup := m[in.Code]; dup {
			panic("problem: code listed twice: " + string(in.Code))
		}
		m[in.Code] = in
	}
	return m
}()

// TypeBase is where each code's documentation lives (docs/errors.md).
const TypeBase = "https://docs.veref.work/errors/"

// Status is the HTTP status of c; an unknown code is a 500, so a typo
// shows up as a server fault rather than a client one.
func (c Code) Status() int {
	if in, ok := byCode[c]; ok {
		return in.Status
	}
	return http.StatusInternalServerError
}

// Type is c's stable RFC 9457 type URI.
func (c Code) Type() string { return TypeBase + string(c) }

// Known says whether c is in the table.
func (c Code) Known() bool { _, ok := byCode[c]; return ok }

// All lists every code, sorted by status then name: the order of the docs.
func All() []Info {
	out := append([]Info(nil), table...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Status != out[j].Status {
			return out[i].Status < out[j].Status
		}
		return out[i].Code < out[j].Code
	})
	return out
}

// FromStatus is the code for an error raised outside Veref's code (a
// router, a framework's validation) that knows only a status.
func FromStatus(status int) Code {
	switch status {
	case 400, 422:
		return InvalidInput
	case 401:
		return AuthMissing
	case 403:
		return ScopeMissing
	case 404:
		return NotFound
	case 405:
		return MethodNotAllowed
	case 409:
		return Conflict
	case 413:
		return TooLarge
	case 415:
		return UnsupportedMediaType
	case 429:
		return RateLimited
	case 503:
		return Unavailable
	default:
		return Internal
	}
}
