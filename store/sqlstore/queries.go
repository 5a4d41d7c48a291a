package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

// Q implements store.Queries over a reader and a writer: outside a
// transaction SQLite reads from its reader pool and writes through its one
// writer connection; inside one, both are the transaction.
type Q struct {
	d    *Dialect
	r, w querier
	// keys hears of writes to api_keys: outside a transaction at once,
	// inside one after it commits (see Store.tx).
	keys *keyWrites
	// timeout bounds every statement, so a database that stops answering
	// costs a caller this long at most instead of the whole stall.
	timeout time.Duration
	// tx is the transaction of Store.tx, which batch's prepared
	// statements run in.
	tx    *sql.Tx
	batch *batchStmts
}

// bounded gives ctx the statement deadline; cancel after the rows are read.
func (q *Q) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if q.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, q.timeout)
}

var _ store.Queries = (*Q)(nil)

type scanner interface{ Scan(dest ...any) error }

func (q *Q) exec(ctx context.Context, query string, args ...any) (int64, error) {
	defer q.wrote(ctx, query)
	ctx, cancel := q.bounded(ctx)
	defer cancel()
	res, err := q.w.ExecContext(ctx, q.d.rebind(query), args...)
	if err != nil {
		return 0, q.d.err(err)
	}
	n, err := res.RowsAffected()
	return n, q.d.err(err)
}

func get[T any](ctx context.Context, q *Q, db querier, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	defer q.wrote(ctx, query)
	ctx, cancel := q.bounded(ctx)
	defer cancel()
	v, err := scan(db.QueryRowContext(ctx, q.d.rebind(query), args...))
	return v, q.d.err(err)
}

func all[T any](ctx context.Context, q *Q, db querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	defer q.wrote(ctx, query)
	ctx, cancel := q.bounded(ctx)
	defer cancel()
	rows, err := db.QueryContext(ctx, q.d.rebind(query), args...)
	if err != nil {
		return nil, q.d.err(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, q.d.err(err)
		}
		out = append(out, v)
	}
	return out, q.d.err(rows.Err())
}

// filter builds the WHERE clause of a list; empty values match everything.
type filter struct {
	sql  strings.Builder
	args []any
}

func where(cond string, args ...any) *filter {
	f := &filter{args: args}
	f.sql.WriteString(" WHERE " + cond)
	return f
}

func (f *filter) and(cond string, v string, args ...any) *filter {
	if v != "" {
		f.sql.WriteString(" AND " + cond)
		f.args = append(f.args, args...)
	}
	return f
}

func (f *filter) eq(col, v string) *filter { return f.and(col+" = ?", v, v) }

// list runs a keyset page: newest first by id, one row more than asked to
// know whether a next page exists.
func list[T any](ctx context.Context, q *Q, scan func(scanner) (T, error), id func(T) string, cols, table string, f *filter, p store.Page) ([]T, string, error) {
	after, ok := store.DecodeCursor(p.Cursor)
	if !ok {
		return nil, "", store.ErrBadCursor
	}
	f.and("id < ?", after, after)
	n := p.Size()
	query := "SELECT " + cols + " FROM " + table + f.sql.String() + " ORDER BY id DESC LIMIT ?"
	out, err := all(ctx, q, q.r, scan, query, append(f.args, n+1)...)
	if err != nil {
		return nil, "", err
	}
	if len(out) > n {
		out = out[:n]
		return out, store.EncodeCursor(id(out[n-1])), nil
	}
	return out, "", nil
}

// versioned is the optimistic update of an aggregate: when no row matches,
// a second look tells a stale version (ErrConflict) from a missing row.
func (q *Q) versioned(ctx context.Context, table string, ten store.Tenancy, id string, version int, set string, args ...any) error {
	args = append(args, ten.TenantID, string(ten.Environment), id, version)
	n, err := q.exec(ctx, "UPDATE "+table+" SET "+set+", version = version + 1 WHERE tenant_id = ? AND environment = ? AND id = ? AND version = ?", args...)
	if err != nil || n == 1 {
		return err
	}
	return q.conflictOrMissing(ctx, "SELECT 1 FROM "+table+" WHERE tenant_id = ? AND environment = ? AND id = ?", ten.TenantID, string(ten.Environment), id)
}

func (q *Q) conflictOrMissing(ctx context.Context, query string, args ...any) error {
	ctx, cancel := q.bounded(ctx)
	defer cancel()
	var one int
	err := q.w.QueryRowContext(ctx, q.d.rebind(query), args...).Scan(&one)
	if err == nil {
		return store.ErrConflict
	}
	return q.d.err(err)
}

func env(ten store.Tenancy) string { return string(ten.Environment) }

// Tenants and recruiters.

const tenantCols = "id, name, clerk_org_id, created_at"

func scanTenant(s scanner) (t store.Tenant, err error) {
	err = s.Scan(&t.ID, &t.Name, &t.ClerkOrgID, tcol(&t.CreatedAt))
	return t, err
}

func (q *Q) CreateTenant(ctx context.Context, t store.Tenant) error {
	_, err := q.exec(ctx, "INSERT INTO tenants ("+tenantCols+") VALUES (?, ?, ?, ?)", t.ID, t.Name, t.ClerkOrgID, q.d.t(t.CreatedAt))
	return err
}

func (q *Q) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	return get(ctx, q, q.r, scanTenant, "SELECT "+tenantCols+" FROM tenants WHERE id = ?", id)
}

func (q *Q) LockTenant(ctx context.Context, id string) error {
	_, err := get(ctx, q, q.w, func(s scanner) (id string, err error) { return id, s.Scan(&id) },
		"SELECT id FROM tenants WHERE id = ?"+q.d.ForUpdate, id)
	return err
}

func (q *Q) TenantByClerkOrg(ctx context.Context, orgID string) (store.Tenant, error) {
	return get(ctx, q, q.r, scanTenant, "SELECT "+tenantCols+" FROM tenants WHERE clerk_org_id = ? AND clerk_org_id <> ''", orgID)
}

const recruiterCols = "id, tenant_id, email, clerk_user_id, admin, created_at"

func scanRecruiter(s scanner) (r store.Recruiter, err error) {
	err = s.Scan(&r.ID, &r.TenantID, &r.Email, &r.ClerkUserID, &r.Admin, tcol(&r.CreatedAt))
	return r, err
}

func (q *Q) CreateRecruiter(ctx context.Context, r store.Recruiter) error {
	_, err := q.exec(ctx, "INSERT INTO recruiters ("+recruiterCols+") VALUES (?, ?, ?, ?, ?, ?)",
		r.ID, r.TenantID, r.Email, r.ClerkUserID, r.Admin, q.d.t(r.CreatedAt))
	return err
}

func (q *Q) GetRecruiter(ctx context.Context, tenantID, id string) (store.Recruiter, error) {
	return get(ctx, q, q.r, scanRecruiter, "SELECT "+recruiterCols+" FROM recruiters WHERE tenant_id = ? AND id = ?", tenantID, id)
}

func (q *Q) RecruiterByClerkUser(ctx context.Context, tenantID, clerkUserID string) (store.Recruiter, error) {
	return get(ctx, q, q.r, scanRecruiter, "SELECT "+recruiterCols+" FROM recruiters WHERE tenant_id = ? AND clerk_user_id = ? AND clerk_user_id <> ''", tenantID, clerkUserID)
}

// API keys and usage.

const keyCols = "id, tenant_id, recruiter_id, name, prefix, environment, hash, scopes, created_at, expires_at, revoked_at, revoked_by, revoke_note, last_used_at, " +
	"suspended_at, suspended_by, suspend_note, rolled_from, rolled_to, " +
	"rate_limit_requests, rate_limit_per, allowed_ips, agent_daily_tokens"

func scanKey(s scanner) (k store.APIKey, err error) {
	var reqs sql.NullInt64
	var per sql.NullString
	var tokens sql.NullInt64
	err = s.Scan(&k.ID, &k.TenantID, &k.RecruiterID, &k.Name, &k.Prefix, &k.Environment, &k.Hash, jcol(&k.Scopes),
		tcol(&k.CreatedAt), tnull(&k.ExpiresAt), tnull(&k.RevokedAt), &k.RevokedBy, &k.RevokeNote, tnull(&k.LastUsedAt),
		tnull(&k.SuspendedAt), &k.SuspendedBy, &k.SuspendNote, &k.RolledFrom, &k.RolledTo,
		&reqs, &per, jcol(&k.AllowedIPs), &tokens)
	if reqs.Valid && per.Valid {
		k.RateLimit = &auth.RateLimit{Requests: int(reqs.Int64), Per: per.String}
	}
	if tokens.Valid {
		k.AgentDailyTokens = &tokens.Int64
	}
	if len(k.AllowedIPs) == 0 {
		k.AllowedIPs = nil
	}
	return k, err
}

// limitArgs are the values of rate_limit_requests, rate_limit_per,
// allowed_ips and agent_daily_tokens.
func limitArgs(l store.KeyLimits) []any {
	var reqs, per, tokens any
	if l.RateLimit != nil {
		reqs, per = l.RateLimit.Requests, l.RateLimit.Per
	}
	if l.AgentDailyTokens != nil {
		tokens = *l.AgentDailyTokens
	}
	ips := l.AllowedIPs
	if ips == nil {
		ips = []string{}
	}
	return []any{reqs, per, js(ips), tokens}
}

func (q *Q) InsertAPIKey(ctx context.Context, k store.APIKey) error {
	args := append([]any{k.ID, k.TenantID, k.RecruiterID, k.Name, k.Prefix, string(k.Environment), k.Hash, js(k.Scopes),
		q.d.t(k.CreatedAt), q.d.tp(k.ExpiresAt), q.d.tp(k.RevokedAt), k.RevokedBy, k.RevokeNote, q.d.tp(k.LastUsedAt),
		q.d.tp(k.SuspendedAt), k.SuspendedBy, k.SuspendNote, k.RolledFrom, k.RolledTo},
		limitArgs(k.KeyLimits)...)
	_, err := q.exec(ctx, "INSERT INTO api_keys ("+keyCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args...)
	return err
}

func (q *Q) SetAPIKeySuspension(ctx context.Context, tenantID, id, by, note string, at *time.Time) (store.APIKey, error) {
	if at == nil {
		by, note = "", ""
	}
	n, err := q.exec(ctx, "UPDATE api_keys SET suspended_at = ?, suspended_by = ?, suspend_note = ? WHERE tenant_id = ? AND id = ?",
		q.d.tp(at), by, note, tenantID, id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.APIKey{}, err
	}
	return get(ctx, q, q.w, scanKey, "SELECT "+keyCols+" FROM api_keys WHERE tenant_id = ? AND id = ?", tenantID, id)
}

func (q *Q) SetAPIKeyLimits(ctx context.Context, tenantID, id string, l store.KeyLimits) (store.APIKey, error) {
	args := append(limitArgs(l), tenantID, id)
	n, err := q.exec(ctx, "UPDATE api_keys SET rate_limit_requests = ?, rate_limit_per = ?, allowed_ips = ?, agent_daily_tokens = ? WHERE tenant_id = ? AND id = ?", args...)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.APIKey{}, err
	}
	return get(ctx, q, q.w, scanKey, "SELECT "+keyCols+" FROM api_keys WHERE tenant_id = ? AND id = ?", tenantID, id)
}

func (q *Q) MarkAPIKeyRolled(ctx context.Context, tenantID, id, newName, rolledTo string, expiresAt time.Time) error {
	n, err := q.exec(ctx, "UPDATE api_keys SET name = ?, rolled_to = ?, expires_at = ? WHERE tenant_id = ? AND id = ?",
		newName, rolledTo, q.d.t(expiresAt), tenantID, id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

func (q *Q) APIKeyNameTaken(ctx context.Context, tenantID, name string) (bool, error) {
	var one int
	err := q.w.QueryRowContext(ctx, q.d.rebind("SELECT 1 FROM api_keys WHERE tenant_id = ? AND name = ?"), tenantID, name).Scan(&one)
	if err = q.d.err(err); errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Agent spend.

func (q *Q) AddAgentTokens(ctx context.Context, keyID, day string, tokens int64) error {
	_, err := q.exec(ctx, `INSERT INTO agent_token_spend (key_id, day, tokens) VALUES (?, ?, ?)
		ON CONFLICT (key_id, day) DO UPDATE SET tokens = agent_token_spend.tokens + excluded.tokens`, keyID, day, tokens)
	return err
}

func (q *Q) AgentTokens(ctx context.Context, keyID, day string) (int64, error) {
	var n int64
	err := q.r.QueryRowContext(ctx, q.d.rebind("SELECT tokens FROM agent_token_spend WHERE key_id = ? AND day = ?"), keyID, day).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, q.d.err(err)
}

func (q *Q) GetAPIKey(ctx context.Context, tenantID, id string) (store.APIKey, error) {
	return get(ctx, q, q.r, scanKey, "SELECT "+keyCols+" FROM api_keys WHERE tenant_id = ? AND id = ?", tenantID, id)
}

func (q *Q) ListAPIKeys(ctx context.Context, tenantID string, f store.APIKeyFilter, p store.Page) ([]store.APIKey, string, error) {
	w := where("tenant_id = ?", tenantID).eq("recruiter_id", f.RecruiterID)
	return list(ctx, q, scanKey, func(k store.APIKey) string { return k.ID }, keyCols, "api_keys", w, p)
}

func (q *Q) CountActiveAPIKeys(ctx context.Context, tenantID string, now time.Time) (int, error) {
	ctx, cancel := q.bounded(ctx)
	defer cancel()
	var n int
	err := q.r.QueryRowContext(ctx, q.d.rebind("SELECT COUNT(*) FROM api_keys WHERE tenant_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"),
		tenantID, q.d.t(now)).Scan(&n)
	return n, q.d.err(err)
}

func (q *Q) RevokeAPIKey(ctx context.Context, tenantID, id, by, note string, at time.Time) (store.APIKey, error) {
	n, err := q.exec(ctx, "UPDATE api_keys SET revoked_at = ?, revoked_by = ?, revoke_note = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL",
		q.d.t(at), by, note, tenantID, id)
	if err == nil && n == 0 {
		err = q.conflictOrMissing(ctx, "SELECT 1 FROM api_keys WHERE tenant_id = ? AND id = ?", tenantID, id)
	}
	if err != nil {
		return store.APIKey{}, err
	}
	return get(ctx, q, q.w, scanKey, "SELECT "+keyCols+" FROM api_keys WHERE tenant_id = ? AND id = ?", tenantID, id)
}

const usageCols = "id, key_id, tenant_id, environment, surface, endpoint, method, status, duration_ms, ip_hash, trace_id, at"

func scanUsage(s scanner) (u store.Usage, err error) {
	err = s.Scan(&u.ID, &u.KeyID, &u.TenantID, &u.Environment, &u.Surface, &u.Endpoint, &u.Method, &u.Status,
		&u.DurationMS, &u.IPHash, &u.TraceID, tcol(&u.At))
	return u, err
}

func (q *Q) ListUsage(ctx context.Context, tenantID, keyID string, p store.Page) ([]store.Usage, string, error) {
	w := where("tenant_id = ? AND key_id = ?", tenantID, keyID)
	return list(ctx, q, scanUsage, func(u store.Usage) string { return u.ID }, usageCols, "api_key_usage", w, p)
}

// usageIDLag bounds how much later than its at the id of a usage row
// written before migration 0015 can be: those ids carry the end of their
// request, not its start (store.NewIDAt). Rows since carry their at.
const usageIDLag = 15 * time.Minute

// UsageBetween reads a key's rows as a range of the (key_id, id) index, the
// one secondary index the table keeps, and filters on at: a row is in the
// range when its at is. The one approximation is for rows written before
// migration 0015 by a request that lasted over usageIDLag and ended past
// to: their id lies beyond the range read.
func (q *Q) UsageBetween(ctx context.Context, tenantID, keyID string, from, to time.Time, max int) ([]store.Usage, error) {
	return all(ctx, q, q.r, scanUsage, "SELECT "+usageCols+` FROM api_key_usage
		WHERE key_id = ? AND id >= ? AND id < ? AND tenant_id = ? AND at >= ? AND at < ? ORDER BY id LIMIT ?`,
		keyID, store.IDAt("use", from), store.IDAt("use", to.Add(usageIDLag)), tenantID, q.d.t(from), q.d.t(to), max)
}

// Audit.

const auditCols = "id, tenant_id, environment, actor_kind, actor_id, surface, action, target_type, target_id, trace_id, outcome, data, at"

func scanAudit(s scanner) (e store.AuditEvent, err error) {
	err = s.Scan(&e.ID, &e.TenantID, &e.Environment, &e.ActorKind, &e.ActorID, &e.Surface, &e.Action,
		&e.TargetType, &e.TargetID, &e.TraceID, &e.Outcome, jcol(&e.Data), tcol(&e.At))
	return e, err
}

func (q *Q) InsertAudit(ctx context.Context, e store.AuditEvent) error {
	_, err := q.exec(ctx, "INSERT INTO audit_events ("+auditCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		e.ID, e.TenantID, string(e.Environment), e.ActorKind, e.ActorID, e.Surface, e.Action,
		e.TargetType, e.TargetID, e.TraceID, e.Outcome, js(e.Data), q.d.t(e.At))
	return err
}

func (q *Q) ListAudit(ctx context.Context, ten store.Tenancy, f store.AuditFilter, p store.Page) ([]store.AuditEvent, string, error) {
	w := where("tenant_id = ? AND environment = ?", ten.TenantID, env(ten)).
		eq("actor_id", f.ActorID).eq("action", f.Action).and(targetCond, f.TargetID, f.TargetID).eq("surface", f.Surface)
	return list(ctx, q, scanAudit, func(e store.AuditEvent) string { return e.ID }, auditCols, "audit_events", w, p)
}

// targetCond narrows a trail to one target. audit_events_targeted holds
// only events with a target (a list read has none); a query uses it when
// its text rules out the empty target itself, which a bound value cannot.
const targetCond = "target_id = ? AND target_id <> ''"

// outcomeCond narrows a trail to one outcome. audit_events_failures holds
// only the events that did not succeed (the narrowing asked for, and a few
// rows, where every read's audit row succeeds); a query uses it when its
// text says outcome <> 'ok', which a bound value cannot say.
func outcomeCond(o string) string {
	if o == string(store.OutcomeOK) {
		return "outcome = ?"
	}
	return "outcome = ? AND outcome <> 'ok'"
}

// auditIDSlack widens the id range derived from since/until: an event
// written before migration 0015 took its id a moment after its at (newer
// ones carry it, store.NewIDAt), so the exact bound is on at and the id
// range only lets the index seek. Clocks moved further than this (tests
// that mock time) would lose rows, so it is generous.
const auditIDSlack = 24 * time.Hour

func (q *Q) ListAuditEvents(ctx context.Context, tenantID string, f store.AuditQuery, p store.Page) ([]store.AuditEvent, string, error) {
	w := where("tenant_id = ?", tenantID).
		eq("environment", f.Environment).eq("actor_kind", f.ActorKind).eq("actor_id", f.ActorID).
		eq("surface", f.Surface).eq("action", f.Action).eq("target_type", f.TargetType).
		and(targetCond, f.TargetID, f.TargetID).and(outcomeCond(f.Outcome), f.Outcome, f.Outcome).
		and("(actor_id = ? OR ("+targetCond+"))", f.KeyID, f.KeyID, f.KeyID)
	if f.Since != nil {
		w.and("at >= ? AND id >= ?", "x", q.d.t(*f.Since), store.IDAt("evt", f.Since.Add(-auditIDSlack)))
	}
	if f.Until != nil {
		w.and("at < ? AND id < ?", "x", q.d.t(*f.Until), store.IDAt("evt", f.Until.Add(auditIDSlack)))
	}
	if f.OwnerRecruiterID != "" {
		if err := q.ownerFilter(ctx, w, tenantID, f.OwnerRecruiterID); err != nil {
			return nil, "", err
		}
	}
	return list(ctx, q, scanAudit, func(e store.AuditEvent) string { return e.ID }, auditCols, "audit_events", w, p)
}

// ownerFilter limits a trail to one recruiter's: what they did, and what
// their keys did or had done to them. The keys are listed first so the
// condition is plain IN lists that the actor and target indexes answer
// (a subquery there made PostgreSQL scan the whole table).
func (q *Q) ownerFilter(ctx context.Context, w *filter, tenantID, recruiterID string) error {
	rows, err := q.r.QueryContext(ctx, q.d.rebind("SELECT id FROM api_keys WHERE tenant_id = ? AND recruiter_id = ?"), tenantID, recruiterID)
	if err != nil {
		return q.d.err(err)
	}
	defer rows.Close()
	var keys []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return q.d.err(err)
		}
		keys = append(keys, id)
	}
	if err := rows.Err(); err != nil {
		return q.d.err(err)
	}
	cond := "(actor_kind = 'recruiter' AND actor_id = ?)"
	args := []any{recruiterID}
	if len(keys) > 0 {
		in := strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")
		cond = "(" + cond + " OR actor_id IN (" + in + ") OR (target_type = 'api_key' AND target_id IN (" + in + ") AND target_id <> ''))"
		args = append(append(args, keys...), keys...)
	}
	w.and(cond, "x", args...)
	return nil
}

func (q *Q) DevSigningKey(ctx context.Context) (string, string, error) {
	var kid, pem string
	err := q.r.QueryRowContext(ctx, "SELECT kid, private_pem FROM dev_signing_keys ORDER BY created_at LIMIT 1").Scan(&kid, &pem)
	return kid, pem, q.d.err(err)
}

func (q *Q) InsertDevSigningKey(ctx context.Context, kid, privatePEM string, at time.Time) error {
	// One key per database: a second insert conflicts even with another kid.
	var one int
	err := q.w.QueryRowContext(ctx, "SELECT 1 FROM dev_signing_keys LIMIT 1").Scan(&one)
	if err == nil {
		return store.ErrConflict
	}
	if err = q.d.err(err); !errors.Is(err, store.ErrNotFound) {
		return err
	}
	_, err = q.exec(ctx, "INSERT INTO dev_signing_keys (kid, private_pem, created_at) VALUES (?, ?, ?)", kid, privatePEM, q.d.t(at))
	return err
}

// Candidates.

const candidateCols = "id, name, email, phone, role, external_ref, created_at, updated_at, version"

func scanCandidate(s scanner) (c store.Candidate, err error) {
	err = s.Scan(&c.ID, &c.Name, &c.Email, &c.Phone, &c.Role, &c.ExternalRef, tcol(&c.CreatedAt), tcol(&c.UpdatedAt), &c.Version)
	return c, err
}

func (q *Q) InsertCandidate(ctx context.Context, ten store.Tenancy, c store.Candidate) error {
	_, err := q.exec(ctx, "INSERT INTO candidates (tenant_id, environment, "+candidateCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
		ten.TenantID, env(ten), c.ID, c.Name, c.Email, c.Phone, c.Role, c.ExternalRef, q.d.t(c.CreatedAt), q.d.t(c.UpdatedAt))
	return err
}

func (q *Q) GetCandidate(ctx context.Context, ten store.Tenancy, id string) (store.Candidate, error) {
	return get(ctx, q, q.r, scanCandidate, "SELECT "+candidateCols+" FROM candidates WHERE tenant_id = ? AND environment = ? AND id = ?", ten.TenantID, env(ten), id)
}

func (q *Q) UpdateCandidate(ctx context.Context, ten store.Tenancy, c store.Candidate) (store.Candidate, error) {
	err := q.versioned(ctx, "candidates", ten, c.ID, c.Version, "name = ?, email = ?, phone = ?, role = ?, external_ref = ?, updated_at = ?",
		c.Name, c.Email, c.Phone, c.Role, c.ExternalRef, q.d.t(c.UpdatedAt))
	if err != nil {
		return store.Candidate{}, err
	}
	c.Version++
	c.CreatedAt, c.UpdatedAt = normTime(c.CreatedAt), normTime(c.UpdatedAt)
	return c, nil
}

// likeEscape makes user text a literal LIKE substring pattern.
var likeEscape = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func (q *Q) ListCandidates(ctx context.Context, ten store.Tenancy, f store.CandidateFilter, p store.Page) ([]store.Candidate, string, error) {
	pat := "%" + likeEscape.Replace(strings.ToLower(f.Query)) + "%"
	w := where("tenant_id = ? AND environment = ?", ten.TenantID, env(ten)).
		and("lower(email) = ?", f.Email, strings.ToLower(f.Email)).
		eq("external_ref", f.ExternalRef).
		and(`(lower(name) LIKE ? ESCAPE '\' OR lower(email) LIKE ? ESCAPE '\')`, f.Query, pat, pat)
	return list(ctx, q, scanCandidate, func(c store.Candidate) string { return c.ID }, candidateCols, "candidates", w, p)
}

// Reference requests.

const referenceCols = "id, candidate_id, recruiter_id, status, due_date, questions, referees, created_at, updated_at, version"

func scanReference(s scanner) (r store.ReferenceRequest, err error) {
	err = s.Scan(&r.ID, &r.CandidateID, &r.RecruiterID, &r.Status, tnull(&r.DueDate), jcol(&r.Questions), jcol(&r.Referees),
		tcol(&r.CreatedAt), tcol(&r.UpdatedAt), &r.Version)
	return r, err
}

func (q *Q) InsertReference(ctx context.Context, ten store.Tenancy, r store.ReferenceRequest) error {
	_, err := q.exec(ctx, "INSERT INTO reference_requests (tenant_id, environment, "+referenceCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
		ten.TenantID, env(ten), r.ID, r.CandidateID, r.RecruiterID, r.Status, q.d.tp(r.DueDate), js(r.Questions), js(r.Referees),
		q.d.t(r.CreatedAt), q.d.t(r.UpdatedAt))
	return err
}

func (q *Q) GetReference(ctx context.Context, ten store.Tenancy, id string) (store.ReferenceRequest, error) {
	return get(ctx, q, q.r, scanReference, "SELECT "+referenceCols+" FROM reference_requests WHERE tenant_id = ? AND environment = ? AND id = ?", ten.TenantID, env(ten), id)
}

func (q *Q) UpdateReference(ctx context.Context, ten store.Tenancy, r store.ReferenceRequest) (store.ReferenceRequest, error) {
	err := q.versioned(ctx, "reference_requests", ten, r.ID, r.Version,
		"recruiter_id = ?, status = ?, due_date = ?, questions = ?, referees = ?, updated_at = ?",
		r.RecruiterID, r.Status, q.d.tp(r.DueDate), js(r.Questions), js(r.Referees), q.d.t(r.UpdatedAt))
	if err != nil {
		return store.ReferenceRequest{}, err
	}
	r.Version++
	r.CreatedAt, r.UpdatedAt, r.DueDate = normTime(r.CreatedAt), normTime(r.UpdatedAt), normPtr(r.DueDate)
	return r, nil
}

func (q *Q) ListReferences(ctx context.Context, ten store.Tenancy, f store.ReferenceFilter, p store.Page) ([]store.ReferenceRequest, string, error) {
	w := where("tenant_id = ? AND environment = ?", ten.TenantID, env(ten)).eq("candidate_id", f.CandidateID).eq("status", string(f.Status))
	return list(ctx, q, scanReference, func(r store.ReferenceRequest) string { return r.ID }, referenceCols, "reference_requests", w, p)
}

// Reports.

const reportCols = "id, request_id, content, shares, created_at, updated_at, version"

func scanReport(s scanner) (r store.Report, err error) {
	err = s.Scan(&r.ID, &r.RequestID, jcol(&r.Content), jcol(&r.Shares), tcol(&r.CreatedAt), tcol(&r.UpdatedAt), &r.Version)
	return r, err
}

func (q *Q) InsertReport(ctx context.Context, ten store.Tenancy, r store.Report) error {
	_, err := q.exec(ctx, "INSERT INTO reports (tenant_id, environment, "+reportCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
		ten.TenantID, env(ten), r.ID, r.RequestID, js(r.Content), js(r.Shares), q.d.t(r.CreatedAt), q.d.t(r.UpdatedAt))
	return err
}

func (q *Q) GetReport(ctx context.Context, ten store.Tenancy, id string) (store.Report, error) {
	return get(ctx, q, q.r, scanReport, "SELECT "+reportCols+" FROM reports WHERE tenant_id = ? AND environment = ? AND id = ?", ten.TenantID, env(ten), id)
}

func (q *Q) UpdateReport(ctx context.Context, ten store.Tenancy, r store.Report) (store.Report, error) {
	err := q.versioned(ctx, "reports", ten, r.ID, r.Version, "content = ?, shares = ?, updated_at = ?",
		js(r.Content), js(r.Shares), q.d.t(r.UpdatedAt))
	if err != nil {
		return store.Report{}, err
	}
	r.Version++
	r.CreatedAt, r.UpdatedAt = normTime(r.CreatedAt), normTime(r.UpdatedAt)
	return r, nil
}

func (q *Q) ListReports(ctx context.Context, ten store.Tenancy, f store.ReportFilter, p store.Page) ([]store.Report, string, error) {
	w := where("tenant_id = ? AND environment = ?", ten.TenantID, env(ten)).eq("request_id", f.RequestID)
	return list(ctx, q, scanReport, func(r store.Report) string { return r.ID }, reportCols, "reports", w, p)
}

// Valuations.

const valuationCols = "id, tenant_id, environment, request_id, status, attempts, next_attempt_at, lease_until, score, components, rationale, error, worker_id, created_at, started_at, finished_at"

func scanValuation(s scanner) (v store.Valuation, err error) {
	err = s.Scan(&v.ID, &v.TenantID, &v.Environment, &v.RequestID, &v.Status, &v.Attempts, tcol(&v.NextAttemptAt), tnull(&v.LeaseUntil),
		&v.Score, jcol(&v.Components), &v.Rationale, &v.Error, &v.WorkerID, tcol(&v.CreatedAt), tnull(&v.StartedAt), tnull(&v.FinishedAt))
	return v, err
}

func (q *Q) InsertValuation(ctx context.Context, ten store.Tenancy, v store.Valuation) error {
	_, err := q.exec(ctx, "INSERT INTO valuations ("+valuationCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		v.ID, ten.TenantID, env(ten), v.RequestID, v.Status, v.Attempts, q.d.t(v.NextAttemptAt), q.d.tp(v.LeaseUntil),
		v.Score, js(v.Components), v.Rationale, v.Error, v.WorkerID, q.d.t(v.CreatedAt), q.d.tp(v.StartedAt), q.d.tp(v.FinishedAt))
	return err
}

func (q *Q) GetValuation(ctx context.Context, ten store.Tenancy, id string) (store.Valuation, error) {
	return get(ctx, q, q.r, scanValuation, "SELECT "+valuationCols+" FROM valuations WHERE tenant_id = ? AND environment = ? AND id = ?", ten.TenantID, env(ten), id)
}

func (q *Q) ListValuations(ctx context.Context, ten store.Tenancy, f store.ValuationFilter, p store.Page) ([]store.Valuation, string, error) {
	w := where("tenant_id = ? AND environment = ?", ten.TenantID, env(ten)).eq("request_id", f.RequestID).eq("status", string(f.Status))
	return list(ctx, q, scanValuation, func(v store.Valuation) string { return v.ID }, valuationCols, "valuations", w, p)
}

func (q *Q) FinishValuation(ctx context.Context, v store.Valuation) error {
	n, err := q.exec(ctx, `UPDATE valuations SET status = ?, score = ?, components = ?, rationale = ?, error = ?, worker_id = ?,
		finished_at = ?, next_attempt_at = ?, lease_until = ? WHERE id = ? AND status = 'running' AND attempts = ?`,
		v.Status, v.Score, js(v.Components), v.Rationale, v.Error, v.WorkerID,
		q.d.tp(v.FinishedAt), q.d.t(v.NextAttemptAt), q.d.tp(v.LeaseUntil), v.ID, v.Attempts)
	if err == nil && n == 0 {
		// Missing or taken over: either way this worker no longer owns the run.
		return store.ErrConflict
	}
	return err
}

// Public tokens.

const tokenCols = "hash, kind, tenant_id, environment, target_id, sub_id, created_at, expires_at, used_at, revoked_at"

func scanToken(s scanner) (t store.PublicToken, err error) {
	err = s.Scan(&t.Hash, &t.Kind, &t.TenantID, &t.Environment, &t.TargetID, &t.SubID,
		tcol(&t.CreatedAt), tcol(&t.ExpiresAt), tnull(&t.UsedAt), tnull(&t.RevokedAt))
	return t, err
}

func (q *Q) InsertPublicToken(ctx context.Context, t store.PublicToken) error {
	_, err := q.exec(ctx, "INSERT INTO public_tokens ("+tokenCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		t.Hash, string(t.Kind), t.TenantID, string(t.Environment), t.TargetID, t.SubID,
		q.d.t(t.CreatedAt), q.d.t(t.ExpiresAt), q.d.tp(t.UsedAt), q.d.tp(t.RevokedAt))
	return err
}

func (q *Q) PublicTokenByHash(ctx context.Context, hash []byte) (store.PublicToken, error) {
	return get(ctx, q, q.r, scanToken, "SELECT "+tokenCols+" FROM public_tokens WHERE hash = ?", hash)
}

func (q *Q) UpdatePublicToken(ctx context.Context, t store.PublicToken) error {
	n, err := q.exec(ctx, "UPDATE public_tokens SET used_at = ?, revoked_at = ?, expires_at = ? WHERE hash = ?",
		q.d.tp(t.UsedAt), q.d.tp(t.RevokedAt), q.d.t(t.ExpiresAt), t.Hash)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// RevokePublicTokens with an empty subID revokes every token of the
// target (a cancelled request); tokens already revoked keep their time.
func (q *Q) RevokePublicTokens(ctx context.Context, ten store.Tenancy, kind store.TokenKind, targetID, subID string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE public_tokens SET revoked_at = ? WHERE tenant_id = ? AND environment = ? AND kind = ? AND target_id = ?
		AND (sub_id = ? OR ? = '') AND revoked_at IS NULL`,
		q.d.t(at), ten.TenantID, env(ten), string(kind), targetID, subID, subID)
	return err
}

// Outbox.

const outboxCols = "id, tenant_id, environment, to_addr, subject, body, created_at, next_attempt_at, sent_at, attempts, last_error"

func scanOutbox(s scanner) (m store.OutboxMessage, err error) {
	err = s.Scan(&m.ID, &m.TenantID, &m.Environment, &m.To, &m.Subject, &m.Body,
		tcol(&m.CreatedAt), tcol(&m.NextAttemptAt), tnull(&m.SentAt), &m.Attempts, &m.LastError)
	return m, err
}

func (q *Q) InsertOutbox(ctx context.Context, ten store.Tenancy, m store.OutboxMessage) error {
	_, err := q.exec(ctx, "INSERT INTO outbox ("+outboxCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		m.ID, ten.TenantID, env(ten), m.To, m.Subject, m.Body, q.d.t(m.CreatedAt), q.d.t(m.NextAttemptAt), q.d.tp(m.SentAt), m.Attempts, m.LastError)
	return err
}

func (q *Q) MarkOutbox(ctx context.Context, id string, held time.Time, sentAt *time.Time, lastError string, nextAttemptAt time.Time) error {
	if sentAt != nil {
		// A delivered message is recorded whoever holds it now; a second
		// record of the same delivery (a retry after a commit whose outcome
		// was lost) finds it sent and changes nothing. A sent message's body
		// holds a single-use link: keep no copy of it.
		_, err := q.exec(ctx, "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = '', body = '' WHERE id = ? AND sent_at IS NULL",
			q.d.t(*sentAt), id)
		return err
	}
	n, err := q.exec(ctx, "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ? AND sent_at IS NULL AND next_attempt_at = ?",
		lastError, q.d.t(nextAttemptAt), id, q.d.t(held))
	if err == nil && n == 0 {
		return store.ErrConflict
	}
	return err
}

func (q *Q) LeaseOutbox(ctx context.Context, id string, held, until time.Time) error {
	n, err := q.exec(ctx, "UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND sent_at IS NULL AND next_attempt_at = ?",
		q.d.t(until), id, q.d.t(held))
	if err == nil && n == 0 {
		return store.ErrConflict
	}
	return err
}

// Idempotency.

const idemCols = "key_id, key, operation, request_hash, status, response, created_at"

func scanIdem(s scanner) (r store.IdempotencyRecord, err error) {
	err = s.Scan(&r.KeyID, &r.Key, &r.Operation, &r.RequestHash, &r.Status, &r.Response, tcol(&r.CreatedAt))
	return r, err
}

func (q *Q) GetIdempotency(ctx context.Context, ten store.Tenancy, keyID, key string) (store.IdempotencyRecord, error) {
	return get(ctx, q, q.r, scanIdem, "SELECT "+idemCols+" FROM idempotency_keys WHERE tenant_id = ? AND environment = ? AND key_id = ? AND key = ?",
		ten.TenantID, env(ten), keyID, key)
}

func (q *Q) InsertIdempotency(ctx context.Context, ten store.Tenancy, r store.IdempotencyRecord) error {
	_, err := q.exec(ctx, "INSERT INTO idempotency_keys (tenant_id, environment, "+idemCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		ten.TenantID, env(ten), r.KeyID, r.Key, r.Operation, r.RequestHash, r.Status, r.Response, q.d.t(r.CreatedAt))
	return err
}

// Conversations.

const conversationCols = "id, recruiter_id, key_id, messages, created_at, updated_at, version"

func scanConversation(s scanner) (c store.Conversation, err error) {
	err = s.Scan(&c.ID, &c.RecruiterID, &c.KeyID, &c.Messages, tcol(&c.CreatedAt), tcol(&c.UpdatedAt), &c.Version)
	return c, err
}

func (q *Q) GetConversation(ctx context.Context, ten store.Tenancy, id string) (store.Conversation, error) {
	return get(ctx, q, q.r, scanConversation, "SELECT "+conversationCols+" FROM conversations WHERE tenant_id = ? AND environment = ? AND id = ?",
		ten.TenantID, env(ten), id)
}

// SaveConversation inserts when c.Version is 0 (ErrConflict if the id is
// taken) and otherwise replaces the stored version c.Version.
func (q *Q) SaveConversation(ctx context.Context, ten store.Tenancy, c store.Conversation) (store.Conversation, error) {
	var err error
	if c.Version == 0 {
		_, err = q.exec(ctx, "INSERT INTO conversations (tenant_id, environment, "+conversationCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
			ten.TenantID, env(ten), c.ID, c.RecruiterID, c.KeyID, c.Messages, q.d.t(c.CreatedAt), q.d.t(c.UpdatedAt))
	} else {
		err = q.versioned(ctx, "conversations", ten, c.ID, c.Version, "recruiter_id = ?, key_id = ?, messages = ?, updated_at = ?",
			c.RecruiterID, c.KeyID, c.Messages, q.d.t(c.UpdatedAt))
	}
	if err != nil {
		return store.Conversation{}, err
	}
	c.Version++
	c.CreatedAt, c.UpdatedAt = normTime(c.CreatedAt), normTime(c.UpdatedAt)
	return c, nil
}

// Worker and authenticator lookups, outside any tenancy.

func (q *Q) keyByPrefix(ctx context.Context, prefix string) (auth.KeyRecord, error) {
	k, err := get(ctx, q, q.r, scanKey, "SELECT "+keyCols+" FROM api_keys WHERE prefix = ?", prefix)
	if err != nil {
		return auth.KeyRecord{}, err
	}
	return auth.KeyRecord{ID: k.ID, TenantID: k.TenantID, RecruiterID: k.RecruiterID, Name: k.Name, Prefix: k.Prefix,
		Environment: k.Environment, Hash: k.Hash, Scopes: k.Scopes, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt,
		SuspendedAt: k.SuspendedAt, RolledTo: k.RolledTo,
		RateLimit: k.RateLimit, AllowedIPs: k.AllowedIPs, AgentDailyTokens: k.AgentDailyTokens}, nil
}
