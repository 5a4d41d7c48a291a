package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// Migrations is one dialect's embedded goose migrations and what it needs
// to apply them.
type Migrations struct {
	Dialect goose.Dialect // goose.DialectPostgres or goose.DialectSQLite3
	FS      fs.FS         // the *.sql files, at its root
	// Locker serialises instances sharing the database; nil where one
	// process owns it (SQLite's single writer connection).
	Locker lock.SessionLocker
	// LegacyTable answers, in one row, whether the table of the runner
	// goose replaced (schema_migrations) exists, without failing when it
	// does not, since it runs inside a transaction.
	LegacyTable string
	// LegacyWait, when set, runs before carrying that table over, to wait
	// for an older binary still applying migrations to it.
	LegacyWait string
}

// legacyRenamed maps the files the old runner recorded by name that goose
// cannot parse a version from to the version the file now has.
var legacyRenamed = map[string]int64{"0010b_api_key_epoch.sql": 11}

// Migrate applies, through goose, every migration of m not yet recorded in
// goose_db_version, each in its own transaction, holding m.Locker if any.
// Out-of-order files (a branch's migration landing after a later one) are
// applied as the old runner did, rather than refused.
func Migrate(ctx context.Context, db *sql.DB, m Migrations) error {
	base, err := database.NewStore(m.Dialect, goose.DefaultTablename)
	if err != nil {
		return err
	}
	opts := []goose.ProviderOption{
		goose.WithStore(carryOver{Store: base, m: m}),
		goose.WithAllowOutofOrder(true),
		goose.WithDisableGlobalRegistry(true),
	}
	if m.Locker != nil {
		opts = append(opts, goose.WithSessionLocker(m.Locker))
	}
	p, err := goose.NewProvider(goose.DialectCustom, db, m.FS, opts...)
	if err != nil {
		return err
	}
	// Not p.Close: that would close db, which the caller owns.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// carryOver is goose's store that, on creating goose's table, records
// there every migration the old runner had recorded in schema_migrations,
// so a database it migrated upgrades without re-running any.
type carryOver struct {
	database.Store
	m Migrations
}

// TableExists keeps goose's catalog check where the dialect has one (the
// embedded interface alone would hide it).
func (c carryOver) TableExists(ctx context.Context, db database.DBTxConn) (bool, error) {
	if t, ok := c.Store.(database.StoreExtender); ok {
		return t.TableExists(ctx, db)
	}
	return false, errors.ErrUnsupported
}

// Insert of version 0 happens once, in the transaction that creates the
// table and under the session lock: the moment to carry the history over.
func (c carryOver) Insert(ctx context.Context, db database.DBTxConn, req database.InsertRequest) error {
	if err := c.Store.Insert(ctx, db, req); err != nil || req.Version != 0 {
		return err
	}
	versions, err := c.legacyVersions(ctx, db)
	if err != nil {
		return fmt.Errorf("carry over schema_migrations: %w", err)
	}
	for _, v := range versions {
		if err := c.Store.Insert(ctx, db, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	return nil
}

// legacyVersions lists the versions schema_migrations recorded, ascending
// (the old runner applied them in name order), or none without the table.
func (c carryOver) legacyVersions(ctx context.Context, db database.DBTxConn) ([]int64, error) {
	if c.m.LegacyWait != "" {
		if _, err := db.ExecContext(ctx, c.m.LegacyWait); err != nil {
			return nil, err
		}
	}
	var exists bool
	if err := db.QueryRowContext(ctx, c.m.LegacyTable).Scan(&exists); err != nil || !exists {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		v, ok := legacyRenamed[name]
		if !ok {
			if v, err = goose.NumericComponent(name); err != nil {
				return nil, err
			}
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
