package sqlstore

import (
	"context"

	"github.com/verefwork/veref/store"
)

const cliSessionCols = "id, device_hash, user_code, client_name, hostname, status, created_at, expires_at, interval_s, last_polled_at, " +
	"tenant_id, recruiter_id, environment, scopes, key_id, decided_at, version"

func scanCLISession(s scanner) (c store.CLISession, err error) {
	err = s.Scan(&c.ID, &c.DeviceHash, &c.UserCode, &c.ClientName, &c.Hostname, &c.Status, tcol(&c.CreatedAt), tcol(&c.ExpiresAt),
		&c.Interval, tnull(&c.LastPolledAt), &c.TenantID, &c.RecruiterID, &c.Environment, jcol(&c.Scopes), &c.KeyID,
		tnull(&c.DecidedAt), &c.Version)
	return c, err
}

func (q *Q) InsertCLISession(ctx context.Context, c store.CLISession) error {
	_, err := q.exec(ctx, "INSERT INTO cli_sessions ("+cliSessionCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		c.ID, c.DeviceHash, c.UserCode, c.ClientName, c.Hostname, c.Status, q.d.t(c.CreatedAt), q.d.t(c.ExpiresAt),
		c.Interval, q.d.tp(c.LastPolledAt), c.TenantID, c.RecruiterID, string(c.Environment), js(scopesOrEmpty(c)), c.KeyID,
		q.d.tp(c.DecidedAt), c.Version)
	return err
}

func (q *Q) CLISessionByDeviceHash(ctx context.Context, hash []byte) (store.CLISession, error) {
	return get(ctx, q, q.r, scanCLISession, "SELECT "+cliSessionCols+" FROM cli_sessions WHERE device_hash = ?", hash)
}

func (q *Q) CLISessionByUserCode(ctx context.Context, userCode string) (store.CLISession, error) {
	return get(ctx, q, q.r, scanCLISession, "SELECT "+cliSessionCols+" FROM cli_sessions WHERE user_code = ?", userCode)
}

func (q *Q) UpdateCLISession(ctx context.Context, c store.CLISession) (store.CLISession, error) {
	n, err := q.exec(ctx, `UPDATE cli_sessions SET status = ?, interval_s = ?, last_polled_at = ?, tenant_id = ?, recruiter_id = ?,
		environment = ?, scopes = ?, key_id = ?, decided_at = ?, version = version + 1 WHERE id = ? AND version = ?`,
		c.Status, c.Interval, q.d.tp(c.LastPolledAt), c.TenantID, c.RecruiterID, string(c.Environment), js(scopesOrEmpty(c)),
		c.KeyID, q.d.tp(c.DecidedAt), c.ID, c.Version)
	if err != nil {
		return c, err
	}
	if n == 0 {
		return c, store.ErrConflict
	}
	c.Version++
	return c, nil
}

func scopesOrEmpty(c store.CLISession) any {
	if c.Scopes == nil {
		return []string{}
	}
	return c.Scopes
}
