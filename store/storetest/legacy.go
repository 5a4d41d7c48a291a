package storetest

import (
	"context"
	"database/sql"
	"io/fs"
	"slices"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/store"
)

// legacyNames are the files the migration runner before goose recorded in
// schema_migrations, by name, with the version each has now.
var legacyNames = []struct {
	name    string
	version int64
}{
	{"0001_init.sql", 1}, {"0010_api_key_events.sql", 10}, {"0010b_api_key_epoch.sql", 11},
	{"0012_key_status.sql", 12}, {"0013_cli_sessions.sql", 13}, {"0014_limits.sql", 14},
}

// LegacyMigrated leaves db as the runner before goose left it after
// applying every migration of dir up to version upTo: the schema, and
// schema_migrations naming each file, with no goose_db_version.
func LegacyMigrated(t testing.TB, db *sql.DB, dialect goose.Dialect, dir fs.FS, upTo int64) {
	t.Helper()
	ctx := context.Background()
	// Every file past upTo is left out, those added since goose too: the
	// old runner never saw them.
	files, err := fs.Glob(dir, "*.sql")
	require.NoError(t, err)
	var later []int64
	for _, f := range files {
		if v, err := goose.NumericComponent(f); err == nil && v > upTo {
			later = append(later, v)
		}
	}
	// Versioning off: goose runs the files and records nothing.
	p, err := goose.NewProvider(dialect, db, dir, goose.WithDisableVersioning(true),
		goose.WithExcludeVersions(later), goose.WithDisableGlobalRegistry(true))
	require.NoError(t, err)
	_, err = p.Up(ctx)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
	require.NoError(t, err)
	for _, l := range legacyNames {
		if l.version <= upTo {
			_, err = db.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ('"+l.name+"', '2026-12-01T00:00:00.000000Z')")
			require.NoError(t, err)
		}
	}
}

// AssertMigratedOnce checks that goose_db_version records every migration
// of dir once, besides goose's own version 0. A file goose cannot read a
// version from (as 0010b was) fails it: goose would skip it silently.
func AssertMigratedOnce(t testing.TB, db *sql.DB, dir fs.FS) {
	t.Helper()
	files, err := fs.Glob(dir, "*.sql")
	require.NoError(t, err)
	var want []int64
	for _, f := range files {
		v, err := goose.NumericComponent(f)
		require.NoError(t, err, "goose ignores %s", f)
		want = append(want, v)
	}
	slices.Sort(want)
	rows, err := db.Query("SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY version_id")
	require.NoError(t, err)
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var v int64
		require.NoError(t, rows.Scan(&v))
		got = append(got, v)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, want, got, "each migration recorded exactly once")
}

// RunLegacyUpgrade starts the new code on databases the runner before
// goose migrated, fully and part way: Migrate must carry its history over
// (re-running a migration would fail on tables that exist), apply only what
// is missing, and record each once, twice in a row. fresh gives an empty
// database, as raw SQL and as a store opener.
func RunLegacyUpgrade(t *testing.T, dialect goose.Dialect, dir fs.FS, fresh func(t *testing.T) (*sql.DB, func() store.Store)) {
	for _, c := range []struct {
		name string
		upTo int64
	}{{"all it shipped", 14}, {"through 0012", 12}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			db, open := fresh(t)
			LegacyMigrated(t, db, dialect, dir, c.upTo)
			s := open()
			require.NoError(t, s.Migrate(ctx))
			require.NoError(t, s.Migrate(ctx))
			AssertMigratedOnce(t, db, dir)
			// 0013's table exists whether the old runner or goose made it.
			var n int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM cli_sessions").Scan(&n))
			require.NoError(t, s.CreateTenant(ctx, store.Tenant{ID: "ten_1", Name: "x"}))
		})
	}
}
