package store

import (
	"time"

	"github.com/verefwork/veref/auth"
)

// CLI session statuses: pending until a recruiter decides, then approved
// or denied; an approved session becomes redeemed when the CLI collects
// its key, once.
const (
	CLISessionPending  = "pending"
	CLISessionApproved = "approved"
	CLISessionDenied   = "denied"
	CLISessionRedeemed = "redeemed"
)

// CLISession is one `veref login`: a device authorization grant. Only the
// keyed hash of the device code is stored; the key is minted at redemption.
type CLISession struct {
	ID           string
	DeviceHash   []byte
	UserCode     string // eight characters, without the dash
	ClientName   string
	Hostname     string
	Status       string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	Interval     int // seconds the CLI waits between polls
	LastPolledAt *time.Time
	// Set by the approval (tenant and recruiter also by a denial).
	TenantID    string
	RecruiterID string
	Environment auth.Environment
	Scopes      []auth.Scope // empty means all
	DecidedAt   *time.Time
	// KeyID is the key minted at redemption.
	KeyID   string
	Version int
}
