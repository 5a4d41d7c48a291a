package store

import (
	"strings"
	"time"

	"github.com/verefwork/veref/auth"
)

// Actor is who acted in an audit event.
type Actor struct {
	Kind ActorKind
	ID   string
}

// NewAuditEvent is the one way an audit event is made. What every event
// needs is a parameter, so none can be left out: the tenancy it belongs to,
// who acted, on which surface, under which trace, what they did and when.
// The event gets a fresh id and the outcome OutcomeOK; On, WithData and
// WithOutcome add the rest.
//
// An event outside any tenant (a CLI login issued before anyone approved
// it) is made by the system with an empty Tenancy.
func NewAuditEvent(ten Tenancy, by Actor, surface Surface, traceID, action string, at time.Time) AuditEvent {
	return AuditEvent{ID: NewIDAt("evt", at), TenantID: ten.TenantID, Environment: ten.Environment,
		ActorKind: by.Kind, ActorID: by.ID, Surface: surface, TraceID: traceID, Action: action,
		Outcome: OutcomeOK, At: at}
}

// On names what the action was on.
func (e AuditEvent) On(targetType, targetID string) AuditEvent {
	e.TargetType, e.TargetID = targetType, targetID
	return e
}

// WithData attaches the action's details.
func (e AuditEvent) WithData(data map[string]any) AuditEvent {
	e.Data = data
	return e
}

// WithOutcome records a refusal or failure (its stable error code).
func (e AuditEvent) WithOutcome(o Outcome) AuditEvent {
	e.Outcome = o
	return e
}

// Missing lists the required fields e lacks, empty when it is complete.
// Tenant and environment may be absent together only on a system event.
func (e AuditEvent) Missing() []string {
	var m []string
	need := func(ok bool, field string) {
		if !ok {
			m = append(m, field)
		}
	}
	need(strings.HasPrefix(e.ID, "evt_"), "id")
	outside := e.ActorKind == ActorSystem && e.TenantID == "" && e.Environment == ""
	need(outside || e.TenantID != "", "tenantId")
	need(outside || e.Environment == auth.Live || e.Environment == auth.Test, "environment")
	need(e.ActorKind != "", "actorKind")
	need(e.ActorID != "", "actorId")
	need(e.Surface != "", "surface")
	need(e.TraceID != "", "traceId")
	need(e.Action != "", "action")
	need(e.Outcome != "", "outcome")
	need(!e.At.IsZero(), "at")
	return m
}
