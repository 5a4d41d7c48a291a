package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
	"github.com/verefwork/veref/tools"
)

// MaxRollGraceHours bounds how long a rolled key keeps working: a week is
// enough to redeploy anything, and longer would make a roll after a leak
// pointless.
const MaxRollGraceHours = 168

// Suspend stops a key from authenticating until it is resumed. Unlike
// revocation it is reversible, so it is what to do while investigating.
func (ks *KeyService) Suspend(ctx context.Context, tenantID, id, note string, by Actor) (KeyView, error) {
	if len(note) > 500 {
		return KeyView{}, tools.Invalid("note", "the note must be at most 500 characters")
	}
	return ks.setSuspension(ctx, tenantID, id, note, by, true)
}

// Resume lets a suspended key authenticate again.
func (ks *KeyService) Resume(ctx context.Context, tenantID, id string, by Actor) (KeyView, error) {
	return ks.setSuspension(ctx, tenantID, id, "", by, false)
}

func (ks *KeyService) setSuspension(ctx context.Context, tenantID, id, note string, by Actor, suspend bool) (KeyView, error) {
	now := ks.Now().UTC()
	var out store.APIKey
	err := ks.Store.InTx(ctx, func(q store.Queries) error {
		k, err := loadKey(ctx, q, tenantID, id)
		if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return &tools.Error{Code: problem.Conflict, Message: "this key was revoked; revocation is permanent",
				Hint: "create a new key instead"}
		}
		action, data := "api_key.suspend", map[string]any{"note": note}
		at := &now
		if !suspend {
			action, data, at = "api_key.resume", nil, nil
		}
		switch {
		case suspend && k.SuspendedAt != nil:
			return &tools.Error{Code: problem.Conflict, Message: "this key is already suspended since " + k.SuspendedAt.Format(time.RFC3339)}
		case !suspend && k.SuspendedAt == nil:
			return &tools.Error{Code: problem.Conflict, Message: "this key is not suspended"}
		}
		if out, err = q.SetAPIKeySuspension(ctx, tenantID, id, by.ID, note, at); err != nil {
			return err
		}
		return q.InsertAudit(ctx, keyEvent(ctx, k, by, action, data, now))
	})
	if err != nil {
		return KeyView{}, err
	}
	return View(out, now), nil
}

// Roll issues a new secret that takes over the key's name, environment,
// scopes, owner and expiry, and leaves the old secret working for grace.
func (ks *KeyService) Roll(ctx context.Context, tenantID, id string, grace time.Duration, by Actor) (CreatedKey, error) {
	if grace < 0 || grace > MaxRollGraceHours*time.Hour {
		return CreatedKey{}, tools.Invalid("graceHours", fmt.Sprintf("graceHours must be 0 to %d", MaxRollGraceHours))
	}
	now := ks.Now().UTC()
	var created CreatedKey
	err := ks.Store.InTx(ctx, func(q store.Queries) error {
		old, err := loadKey(ctx, q, tenantID, id)
		if err != nil {
			return err
		}
		if st := old.Status(now); st != "active" || old.RolledTo != "" {
			msg := "only an active key can be rolled; this one is " + st
			if old.RolledTo != "" {
				msg = "this key was already rolled; roll its replacement " + old.RolledTo + " instead"
			}
			return &tools.Error{Code: problem.Conflict, Message: msg}
		}
		tok, err := auth.NewToken(old.Environment)
		if err != nil {
			return err
		}
		nk := store.APIKey{ID: store.NewID("key"), TenantID: tenantID, RecruiterID: old.RecruiterID, Name: old.Name,
			Prefix: tok.Prefix, Environment: old.Environment, Hash: ks.Hasher.Hash(tok.String()), Scopes: old.Scopes,
			CreatedAt: now, ExpiresAt: old.ExpiresAt, RolledFrom: old.ID}
		// The old key ends at the grace, or at its own expiry if that is sooner.
		end := now.Add(grace)
		if old.ExpiresAt != nil && old.ExpiresAt.Before(end) {
			end = *old.ExpiresAt
		}
		rolledName, err := freeName(ctx, q, tenantID, old.Name+" (rolled)")
		if err != nil {
			return err
		}
		// Rename first: names are unique and the new key takes the old name.
		if err := q.MarkAPIKeyRolled(ctx, tenantID, old.ID, rolledName, nk.ID, end); err != nil {
			return err
		}
		if err := q.InsertAPIKey(ctx, nk); err != nil {
			return err
		}
		created = CreatedKey{APIKey: View(nk, now), Plaintext: tok.String()}
		return q.InsertAudit(ctx, keyEvent(ctx, old, by, "api_key.roll", map[string]any{
			"newKeyId": nk.ID, "newPrefix": nk.Prefix, "graceHours": grace.Hours(), "graceEndsAt": end, "renamedTo": rolledName,
		}, now))
	})
	if err != nil {
		return CreatedKey{}, err
	}
	return created, nil
}

// freeName is name, or name with a counter when an earlier roll took it.
func freeName(ctx context.Context, q store.Queries, tenantID, name string) (string, error) {
	candidate := name
	for i := 2; i < 1000; i++ {
		taken, err := q.APIKeyNameTaken(ctx, tenantID, candidate)
		if err != nil || !taken {
			return candidate, err
		}
		candidate = fmt.Sprintf("%s %d", name, i)
	}
	return "", &tools.Error{Code: problem.Conflict, Message: "too many rolled keys share this name; revoke old ones first"}
}

func loadKey(ctx context.Context, q store.Queries, tenantID, id string) (store.APIKey, error) {
	k, err := q.GetAPIKey(ctx, tenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return k, tools.NotFound("API key", id)
	}
	return k, err
}

// surface is where the actor acted: the console and the CLI are told apart
// from the management routes in the trail.
func (by Actor) surface() store.Surface {
	if by.Surface != "" {
		return by.Surface
	}
	return store.SurfaceManagement
}

// keyEvent is by's action on key k, under the trace in ctx.
func keyEvent(ctx context.Context, k store.APIKey, by Actor, action string, data map[string]any, at time.Time) store.AuditEvent {
	return store.NewAuditEvent(store.Tenancy{TenantID: k.TenantID, Environment: k.Environment}, by.actor(), by.surface(),
		telemetry.TraceID(ctx), action, at).On("api_key", k.ID).WithData(data)
}
