// Package store is Veref's persistence contract: the domain records and the
// Store interface that store/sqlite and store/postgres implement, checked by
// the one conformance suite in store/storetest.
//
// Every business method takes a Tenancy: no query exists without a tenant and
// an environment, so a test key can never read or change live rows.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/verefwork/veref/auth"
)

// Errors every implementation returns so callers can map them to the
// DESIGN.md codes without knowing the backend.
var (
	// ErrNotFound also covers rows of another tenant or environment: existence never leaks.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict is a unique violation or a stale version.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable wraps a storage failure the caller cannot fix.
	ErrUnavailable = errors.New("store: unavailable")
)

// Tenancy is the pair every business row is keyed by.
type Tenancy struct {
	TenantID    string
	Environment auth.Environment
}

// TenancyOf is the tenancy of a verified principal.
func TenancyOf(p auth.Principal) Tenancy {
	return Tenancy{TenantID: p.TenantID, Environment: p.Environment}
}

// Page asks for up to Limit rows after Cursor (an opaque value from a
// previous page's next cursor). Lists are ordered newest first by id, which
// is time-ordered, so pages are stable while rows are added.
type Page struct {
	Limit  int
	Cursor string
}

// Store is a Veref database. The embedded Queries run outside any
// transaction; InTx runs fn in one transaction, committing only if fn
// returns nil, which is how a mutation and its audit event land together.
type Store interface {
	Queries
	auth.KeyLookup

	InTx(ctx context.Context, fn func(q Queries) error) error
	Migrate(ctx context.Context) error
	Ping(ctx context.Context) error
	Close() error

	// InsertUsage writes a batch of usage rows and moves each key's
	// last_used_at forward, in one transaction.
	InsertUsage(ctx context.Context, rows []Usage) error
	// InsertAudits writes a batch of audit events (the batched reads of MCP
	// and the agent) in one transaction, skipping ids already written so
	// that a retried batch is safe.
	InsertAudits(ctx context.Context, evs []AuditEvent) error

	// ClaimValuation takes the oldest runnable valuation of any tenant
	// (queued with next_attempt_at <= now, or running with an expired lease),
	// marks it running with lease until leaseUntil and attempts+1, and returns
	// it. Concurrent claimers never get the same run (SKIP LOCKED on
	// PostgreSQL). ErrNotFound when there is nothing to do.
	ClaimValuation(ctx context.Context, now, leaseUntil time.Time) (Valuation, error)

	// ClaimOutbox takes up to n unsent messages whose next attempt is due,
	// pushing their next attempt to leaseUntil so another worker skips them.
	// The returned NextAttemptAt is the lease, which MarkOutbox and
	// LeaseOutbox take as proof that the claim is still held.
	ClaimOutbox(ctx context.Context, now, leaseUntil time.Time, n int) ([]OutboxMessage, error)

	// Purge deletes up to batch rows of kind older than before and says how
	// many went; callers loop until it returns fewer than batch.
	Purge(ctx context.Context, kind PurgeKind, before time.Time, batch int) (int, error)
	// Exclusive runs fn unless another instance holds the lock called name
	// (a PostgreSQL advisory lock; SQLite has one instance). ran says which.
	Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (ran bool, err error)
}

// KeyWatcher is a store that can tell a key cache when stored keys change
// (both backends are). WatchKeys blocks until ctx ends, keeping ev live only
// while changes are certain to be heard.
type KeyWatcher interface {
	WatchKeys(ctx context.Context, ev auth.KeyEvents) error
}

// PurgeKind names what the retention sweeper may delete.
type PurgeKind string

const (
	PurgeUsage         PurgeKind = "usage"         // api_key_usage by id, which carries at
	PurgeIdempotency   PurgeKind = "idempotency"   // idempotency_keys by created_at
	PurgeConversations PurgeKind = "conversations" // conversations by updated_at
	PurgeAudit         PurgeKind = "audit"         // audit_events by id, which carries at
	PurgeAgentSpend    PurgeKind = "agent_spend"   // agent_token_spend by day
	PurgeCLISessions   PurgeKind = "cli_sessions"  // cli_sessions by expires_at
)

// Queries are the operations available both outside and inside a transaction.
type Queries interface {
	// Tenants and recruiters (operator and management surfaces).
	CreateTenant(ctx context.Context, t Tenant) error
	GetTenant(ctx context.Context, id string) (Tenant, error)
	// LockTenant holds the tenant's row until the transaction ends, so
	// checks across its rows (the active-key cap) cannot race.
	LockTenant(ctx context.Context, id string) error
	TenantByClerkOrg(ctx context.Context, orgID string) (Tenant, error)
	CreateRecruiter(ctx context.Context, r Recruiter) error
	GetRecruiter(ctx context.Context, tenantID, id string) (Recruiter, error)
	RecruiterByClerkUser(ctx context.Context, tenantID, clerkUserID string) (Recruiter, error)

	// API keys. Names are unique per tenant (ErrConflict).
	InsertAPIKey(ctx context.Context, k APIKey) error
	GetAPIKey(ctx context.Context, tenantID, id string) (APIKey, error)
	ListAPIKeys(ctx context.Context, tenantID string, f APIKeyFilter, p Page) ([]APIKey, string, error)
	// CountActiveAPIKeys counts keys neither revoked nor expired at now.
	CountActiveAPIKeys(ctx context.Context, tenantID string, now time.Time) (int, error)
	// RevokeAPIKey sets revoked_at/by/note once; revoking a revoked key is ErrConflict.
	RevokeAPIKey(ctx context.Context, tenantID, id, by, note string, at time.Time) (APIKey, error)
	// SetAPIKeySuspension suspends a key (at != nil, recording by and note)
	// or resumes it (at == nil, clearing them). ErrNotFound for no such key.
	SetAPIKeySuspension(ctx context.Context, tenantID, id, by, note string, at *time.Time) (APIKey, error)
	// MarkAPIKeyRolled renames the replaced key, links it to its successor
	// and sets the end of its grace as its expiry.
	MarkAPIKeyRolled(ctx context.Context, tenantID, id, newName, rolledTo string, expiresAt time.Time) error
	// APIKeyNameTaken reports whether a key of the tenant has this name.
	APIKeyNameTaken(ctx context.Context, tenantID, name string) (bool, error)
	ListUsage(ctx context.Context, tenantID, keyID string, p Page) ([]Usage, string, error)
	// UsageBetween returns up to max rows of a key with from <= at < to, oldest first.
	UsageBetween(ctx context.Context, tenantID, keyID string, from, to time.Time, max int) ([]Usage, error)
	// SetAPIKeyLimits replaces a key's limits (scopes never change).
	SetAPIKeyLimits(ctx context.Context, tenantID, id string, l KeyLimits) (APIKey, error)

	// Agent spend: tokens a key used on day (UTC, "2006-01-02").
	AddAgentTokens(ctx context.Context, keyID, day string, tokens int64) error
	AgentTokens(ctx context.Context, keyID, day string) (int64, error)

	// Audit.
	InsertAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, ten Tenancy, f AuditFilter, p Page) ([]AuditEvent, string, error)
	// ListAuditEvents is the workspace trail: a whole tenant, both
	// environments unless the query names one.
	ListAuditEvents(ctx context.Context, tenantID string, f AuditQuery, p Page) ([]AuditEvent, string, error)

	// DevSigningKey is the --dev identity provider's RSA key (PEM), or
	// ErrNotFound before the first dev start made one.
	DevSigningKey(ctx context.Context) (kid, privatePEM string, err error)
	// InsertDevSigningKey is ErrConflict when one already exists.
	InsertDevSigningKey(ctx context.Context, kid, privatePEM string, at time.Time) error

	// Candidates.
	InsertCandidate(ctx context.Context, ten Tenancy, c Candidate) error
	GetCandidate(ctx context.Context, ten Tenancy, id string) (Candidate, error)
	// UpdateCandidate writes the whole record; c.Version must equal the
	// stored version (ErrConflict otherwise) and is incremented.
	UpdateCandidate(ctx context.Context, ten Tenancy, c Candidate) (Candidate, error)
	ListCandidates(ctx context.Context, ten Tenancy, f CandidateFilter, p Page) ([]Candidate, string, error)

	// Reference requests are one aggregate: referees and their responses live
	// inside the record and are saved with it.
	InsertReference(ctx context.Context, ten Tenancy, r ReferenceRequest) error
	GetReference(ctx context.Context, ten Tenancy, id string) (ReferenceRequest, error)
	UpdateReference(ctx context.Context, ten Tenancy, r ReferenceRequest) (ReferenceRequest, error) // versioned like UpdateCandidate
	ListReferences(ctx context.Context, ten Tenancy, f ReferenceFilter, p Page) ([]ReferenceRequest, string, error)

	// Reports, with their share links inside the record.
	InsertReport(ctx context.Context, ten Tenancy, r Report) error
	GetReport(ctx context.Context, ten Tenancy, id string) (Report, error)
	UpdateReport(ctx context.Context, ten Tenancy, r Report) (Report, error) // versioned
	ListReports(ctx context.Context, ten Tenancy, f ReportFilter, p Page) ([]Report, string, error)

	// Valuations.
	InsertValuation(ctx context.Context, ten Tenancy, v Valuation) error
	GetValuation(ctx context.Context, ten Tenancy, id string) (Valuation, error)
	ListValuations(ctx context.Context, ten Tenancy, f ValuationFilter, p Page) ([]Valuation, string, error)
	// FinishValuation stores the outcome of a claimed run; it succeeds only
	// while the run is still running under the given attempt number, so a
	// worker whose lease was taken over cannot overwrite the new owner.
	FinishValuation(ctx context.Context, v Valuation) error

	// Public tokens: the single unscoped lookup, by the keyed hash of an
	// unguessable token (referee invitations, report share links).
	InsertPublicToken(ctx context.Context, t PublicToken) error
	PublicTokenByHash(ctx context.Context, hash []byte) (PublicToken, error)
	// UpdatePublicToken sets used_at / revoked_at / expires_at of the token with t.Hash.
	UpdatePublicToken(ctx context.Context, t PublicToken) error
	// RevokePublicTokens revokes every live token of a target (a referee being re-invited, a cancelled request).
	RevokePublicTokens(ctx context.Context, ten Tenancy, kind TokenKind, targetID, subID string, at time.Time) error

	// Outbox: invitation e-mail written in the same transaction as the state change.
	InsertOutbox(ctx context.Context, ten Tenancy, m OutboxMessage) error
	// MarkOutbox records one send attempt of a message claimed with lease
	// held (its next_attempt_at when claimed or last renewed) and counts it
	// in attempts. A delivery (sentAt set) is recorded unless the message is
	// already marked sent, whoever holds it; a failure only while the claim
	// is still held, and ErrConflict otherwise (the lease lapsed and another
	// worker took the message, or it was sent).
	MarkOutbox(ctx context.Context, id string, held time.Time, sentAt *time.Time, lastError string, nextAttemptAt time.Time) error
	// LeaseOutbox moves the lease of a claimed, unsent message from held to
	// until: later to renew it while sending, now to release it. ErrConflict
	// when the claim is no longer held. Times are kept to the microsecond.
	LeaseOutbox(ctx context.Context, id string, held, until time.Time) error

	// Idempotency: the first result of a POST, replayed for retries.
	GetIdempotency(ctx context.Context, ten Tenancy, keyID, key string) (IdempotencyRecord, error)
	// InsertIdempotency is ErrConflict if the key was already recorded.
	InsertIdempotency(ctx context.Context, ten Tenancy, r IdempotencyRecord) error

	// CLI logins: found by the keyed hash of the device code (the CLI) or
	// by the user code (the recruiter approving). UpdateCLISession is
	// versioned like UpdateCandidate, so a session is decided and redeemed once.
	InsertCLISession(ctx context.Context, s CLISession) error
	CLISessionByDeviceHash(ctx context.Context, hash []byte) (CLISession, error)
	CLISessionByUserCode(ctx context.Context, userCode string) (CLISession, error)
	UpdateCLISession(ctx context.Context, s CLISession) (CLISession, error)

	// Agent conversations, owned by a tenancy and a recruiter.
	GetConversation(ctx context.Context, ten Tenancy, id string) (Conversation, error)
	// SaveConversation inserts or replaces (versioned when Version > 0).
	SaveConversation(ctx context.Context, ten Tenancy, c Conversation) (Conversation, error)
}

// Tenant is a recruiting organisation.
type Tenant struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	ClerkOrgID string    `json:"clerkOrgId,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
}

// Recruiter is a person in a tenant who may issue keys.
type Recruiter struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenantId"`
	Email       string    `json:"email"`
	ClerkUserID string    `json:"clerkUserId,omitempty"`
	Admin       bool      `json:"admin"`
	CreatedAt   time.Time `json:"createdAt"`
}

// APIKey is a stored key: metadata plus the keyed hash, never the token.
type APIKey struct {
	ID          string           `json:"id"`
	TenantID    string           `json:"tenantId"`
	RecruiterID string           `json:"recruiterId"`
	Name        string           `json:"name"`
	Prefix      string           `json:"prefix"`
	Environment auth.Environment `json:"environment"`
	Hash        []byte           `json:"-"`
	Scopes      []auth.Scope     `json:"scopes"` // empty means all
	CreatedAt   time.Time        `json:"createdAt"`
	ExpiresAt   *time.Time       `json:"expiresAt,omitempty"`
	RevokedAt   *time.Time       `json:"revokedAt,omitempty"`
	RevokedBy   string           `json:"revokedBy,omitempty"`
	RevokeNote  string           `json:"revokeNote,omitempty"`
	LastUsedAt  *time.Time       `json:"lastUsedAt,omitempty"`
	SuspendedAt *time.Time       `json:"suspendedAt,omitempty"`
	SuspendedBy string           `json:"suspendedBy,omitempty"`
	SuspendNote string           `json:"suspendNote,omitempty"`
	RolledFrom  string           `json:"rolledFrom,omitempty"` // the key this one replaced
	RolledTo    string           `json:"rolledTo,omitempty"`   // the key that replaced this one
	KeyLimits
}

// KeyLimits are the mutable limits of a key. Nil RateLimit and
// AgentDailyTokens mean the server's defaults; empty AllowedIPs, any address.
type KeyLimits struct {
	RateLimit        *auth.RateLimit `json:"rateLimit,omitempty"`
	AllowedIPs       []string        `json:"allowedIps"`
	AgentDailyTokens *int64          `json:"agentDailyTokens,omitempty"`
}

// Status is active, suspended, expired or revoked at now. Revocation wins
// because it is permanent; a suspended key that has also expired shows as
// suspended, which is what resuming it would have to undo first.
func (k APIKey) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked"
	case k.SuspendedAt != nil:
		return "suspended"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired"
	default:
		return "active"
	}
}

// APIKeyFilter narrows ListAPIKeys.
type APIKeyFilter struct {
	RecruiterID string // empty: all recruiters
}

// Usage is one authenticated call.
type Usage struct {
	ID          string           `json:"id"`
	KeyID       string           `json:"keyId"`
	TenantID    string           `json:"tenantId"`
	Environment auth.Environment `json:"environment"`
	Surface     Surface          `json:"surface"`
	Endpoint    string           `json:"endpoint"`
	Method      string           `json:"method"`
	Status      int              `json:"status"`
	DurationMS  float64          `json:"durationMs"`
	IPHash      string           `json:"ipHash"`
	TraceID     string           `json:"traceId"`
	At          time.Time        `json:"at"`
}

// ActorKind says who acted in an audit event.
type ActorKind string

// Actor kinds.
const (
	ActorAPIKey    ActorKind = "api_key"
	ActorRecruiter ActorKind = "recruiter"
	ActorOperator  ActorKind = "operator"
	ActorReferee   ActorKind = "referee"
	ActorSystem    ActorKind = "system"
)

// Surface is where a call came from, on usage rows and audit events.
type Surface string

// Surfaces.
const (
	SurfaceREST       Surface = "rest"
	SurfaceMCP        Surface = "mcp"
	SurfaceAgent      Surface = "agent"
	SurfaceManagement Surface = "management" // the key-management routes
	SurfaceConsole    Surface = "console"
	SurfaceCLI        Surface = "cli"    // the operator's and the login's commands
	SurfacePublic     Surface = "public" // referee and share links
	SurfaceWorker     Surface = "worker" // background loops
)

// Outcome is how an audited action ended: OutcomeOK, or the stable error
// code of its refusal or failure.
type Outcome string

// OutcomeOK is an action that succeeded.
const OutcomeOK Outcome = "ok"

// AuditEvent records who changed or (through MCP and the agent) read what.
type AuditEvent struct {
	ID          string           `json:"id"`
	TenantID    string           `json:"tenantId"`
	Environment auth.Environment `json:"environment"`
	ActorKind   ActorKind        `json:"actorKind"`
	ActorID     string           `json:"actorId"`
	Surface     Surface          `json:"surface"`
	Action      string           `json:"action"`
	TargetType  string           `json:"targetType,omitempty"`
	TargetID    string           `json:"targetId,omitempty"`
	TraceID     string           `json:"traceId,omitempty"`
	Outcome     Outcome          `json:"outcome"`
	Data        map[string]any   `json:"data,omitempty"`
	At          time.Time        `json:"at"`
}

// AuditFilter narrows ListAudit; empty fields match everything.
type AuditFilter struct {
	ActorID  string
	Action   string
	TargetID string
	Surface  string
}

// AuditQuery narrows ListAuditEvents; empty fields match everything.
type AuditQuery struct {
	Environment string
	ActorKind   string
	ActorID     string
	// KeyID matches events by the key as actor or as target.
	KeyID      string
	Surface    string
	Action     string
	TargetType string
	TargetID   string
	Outcome    string
	Since      *time.Time // at >= Since
	Until      *time.Time // at < Until
	// OwnerRecruiterID limits the trail to what one recruiter may see:
	// their own actions and the calls and changes of their keys.
	OwnerRecruiterID string
}

// Candidate is a person references are checked for.
type Candidate struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Email       string    `json:"email,omitempty"`
	Phone       string    `json:"phone,omitempty"`
	Role        string    `json:"role,omitempty"`
	ExternalRef string    `json:"externalRef,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Version     int       `json:"-"`
}

// CandidateFilter narrows ListCandidates; empty fields match everything.
type CandidateFilter struct {
	Email       string // exact, case-insensitive
	ExternalRef string // exact
	Query       string // substring of name or email, case-insensitive
}

// RequestStatus is where a reference request stands.
type RequestStatus string

// Request statuses.
const (
	RequestDraft      RequestStatus = "draft"
	RequestSent       RequestStatus = "sent"
	RequestInProgress RequestStatus = "in_progress"
	RequestCompleted  RequestStatus = "completed"
	RequestCancelled  RequestStatus = "cancelled"
)

// InviteState is where one referee's invitation stands.
type InviteState string

// Referee invitation states.
const (
	InvitePending InviteState = "pending"
	// InviteQueued is an invitation whose e-mail this server only logs
	// (VEREF_MAIL=log, or --dev without a relay): nothing reaches the
	// referee, so it is not "sent".
	InviteQueued    InviteState = "queued"
	InviteSent      InviteState = "sent"
	InviteOpened    InviteState = "opened"
	InviteResponded InviteState = "responded"
	InviteDeclined  InviteState = "declined"
	InviteExpired   InviteState = "expired"
)

// ReferenceRequest is one reference check for a candidate.
type ReferenceRequest struct {
	ID          string        `json:"id"`
	CandidateID string        `json:"candidateId"`
	RecruiterID string        `json:"recruiterId"`
	Status      RequestStatus `json:"status"`
	DueDate     *time.Time    `json:"dueDate,omitempty"`
	Questions   []Question    `json:"questions"`
	Referees    []Referee     `json:"referees"`
	CreatedAt   time.Time     `json:"createdAt"`
	UpdatedAt   time.Time     `json:"updatedAt"`
	Version     int           `json:"-"`
}

// Question is asked of every referee.
type Question struct {
	ID   string `json:"id"`
	Text string `json:"text"`
	Kind string `json:"kind"` // rating (1-5) or text
}

// Referee is someone asked for a reference, with their invitation state and answers.
type Referee struct {
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	Email           string      `json:"email"`
	Relationship    string      `json:"relationship"`
	Company         string      `json:"company,omitempty"`
	State           InviteState `json:"state"`
	InvitedAt       *time.Time  `json:"invitedAt,omitempty"`
	InviteExpiresAt *time.Time  `json:"inviteExpiresAt,omitempty"`
	OpenedAt        *time.Time  `json:"openedAt,omitempty"`
	RespondedAt     *time.Time  `json:"respondedAt,omitempty"`
	DeclinedAt      *time.Time  `json:"declinedAt,omitempty"`
	DeclineReason   string      `json:"declineReason,omitempty"`
	InvitationsSent int         `json:"invitationsSent"`
	Answers         []Answer    `json:"answers,omitempty"`
}

// Answer is a referee's answer to one question.
type Answer struct {
	QuestionID string `json:"questionId"`
	Rating     int    `json:"rating,omitempty"`
	Text       string `json:"text,omitempty"`
}

// ReferenceFilter narrows ListReferences.
type ReferenceFilter struct {
	CandidateID string
	Status      RequestStatus
}

// Report is generated from a request's responses; Content is the rendered
// analysis, Shares its public links.
type Report struct {
	ID        string         `json:"id"`
	RequestID string         `json:"requestId"`
	Content   map[string]any `json:"content"`
	Shares    []Share        `json:"shares"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
	Version   int            `json:"-"`
}

// Share is a read-only public link to a report.
type Share struct {
	ID        string     `json:"id"`
	ExpiresAt time.Time  `json:"expiresAt"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// ReportFilter narrows ListReports.
type ReportFilter struct {
	RequestID string
}

// ValuationStatus is where a valuation run stands.
type ValuationStatus string

// Valuation statuses.
const (
	ValuationQueued    ValuationStatus = "queued"
	ValuationRunning   ValuationStatus = "running"
	ValuationSucceeded ValuationStatus = "succeeded"
	ValuationFailed    ValuationStatus = "failed"
)

// Valuation is an asynchronous scoring run over a request's responses.
type Valuation struct {
	ID            string               `json:"id"`
	TenantID      string               `json:"-"`
	Environment   auth.Environment     `json:"-"`
	RequestID     string               `json:"requestId"`
	Status        ValuationStatus      `json:"status"`
	Attempts      int                  `json:"attempts"`
	NextAttemptAt time.Time            `json:"-"`
	LeaseUntil    *time.Time           `json:"-"`
	Score         *float64             `json:"score,omitempty"`
	Components    *ValuationComponents `json:"components,omitempty"`
	Rationale     string               `json:"rationale,omitempty"`
	Error         string               `json:"error,omitempty"`
	WorkerID      string               `json:"-"`
	CreatedAt     time.Time            `json:"createdAt"`
	StartedAt     *time.Time           `json:"startedAt,omitempty"`
	FinishedAt    *time.Time           `json:"finishedAt,omitempty"`
}

// ValuationComponents are the numbers a valuation's score is made of; the
// rationale quotes them, so a reader can redo the sum.
type ValuationComponents struct {
	WeightedAverageRating float64 `json:"weightedAverageRating" doc:"Mean rating, 1 to 5, weighted by relationship"`
	Base                  float64 `json:"base" doc:"The weighted average on a 0 to 100 scale"`
	Ratings               int     `json:"ratings" doc:"How many ratings were counted"`
	RespondedReferees     int     `json:"respondedReferees"`
	DeclinedReferees      int     `json:"declinedReferees"`
	RatingStdDev          float64 `json:"ratingStdDev" doc:"Standard deviation of every rating"`
	DeclinePenalty        float64 `json:"declinePenalty" doc:"Points taken for referees who declined"`
	DisagreementPenalty   float64 `json:"disagreementPenalty" doc:"Points taken when ratings vary widely"`
}

// ValuationFilter narrows ListValuations.
type ValuationFilter struct {
	RequestID string
	Status    ValuationStatus
}

// TokenKind says what a public token opens.
type TokenKind string

const (
	TokenInvitation TokenKind = "invitation"
	TokenShare      TokenKind = "share"
)

// PublicToken is the stored side of a referee invitation or a share link:
// the keyed hash of the token, what it opens, and its life.
type PublicToken struct {
	Hash        []byte
	Kind        TokenKind
	TenantID    string
	Environment auth.Environment
	TargetID    string // reference request id, or report id
	SubID       string // referee id, or share id
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      *time.Time
	RevokedAt   *time.Time
}

// OutboxMessage is an e-mail waiting to be sent.
type OutboxMessage struct {
	ID            string
	TenantID      string
	Environment   auth.Environment
	To            string
	Subject       string
	Body          string
	CreatedAt     time.Time
	NextAttemptAt time.Time
	SentAt        *time.Time
	Attempts      int
	LastError     string
}

// IdempotencyRecord is the stored first answer to a POST with an Idempotency-Key.
type IdempotencyRecord struct {
	KeyID       string
	Key         string
	Operation   string
	RequestHash string
	Status      int
	Response    []byte
	CreatedAt   time.Time
}

// Conversation is an Ask Veref thread.
type Conversation struct {
	ID          string    `json:"id"`
	RecruiterID string    `json:"recruiterId"`
	KeyID       string    `json:"keyId"`
	Messages    []byte    `json:"-"` // the provider transcript, opaque to the store
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Version     int       `json:"-"`
}
