package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/sqlite"
	"github.com/verefwork/veref/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenSQLite(t) })
}

func TestMemory(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, ":memory:")
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Migrate(ctx))
	require.NoError(t, s.CreateTenant(ctx, store.Tenant{ID: "ten_1", Name: "x"}))
	got, err := s.GetTenant(ctx, "ten_1")
	require.NoError(t, err)
	assert.Equal(t, "x", got.Name)
}

// Data outlives the process: a reopened file keeps rows and migrations.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx))
	require.NoError(t, s.CreateTenant(ctx, store.Tenant{ID: "ten_1", Name: "x"}))
	require.NoError(t, s.Close())

	s, err = sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Migrate(ctx))
	_, err = s.GetTenant(ctx, "ten_1")
	assert.NoError(t, err)
}

func TestUpgradeFromLegacyRunner(t *testing.T) {
	storetest.RunLegacyUpgrade(t, goose.DialectSQLite3, os.DirFS("migrations"), func(t *testing.T) (*sql.DB, func() store.Store) {
		path := filepath.Join(t.TempDir(), "v.db")
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		return db, func() store.Store {
			s, err := sqlite.Open(context.Background(), path)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	})
}

func BenchmarkWrites(b *testing.B) { storetest.BenchmarkWrites(b, storetest.OpenSQLite(b)) }

// A batch insert's statement journal (several rows per statement, inside
// the flush's transaction) is kept in memory: on disk it spilled past 64 KiB
// on every 128-row chunk, a fifth of every usage and audit row's cost.
func TestWriterKeepsStatementJournalsInMemory(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"))
	require.NoError(t, err)
	defer s.Close()
	got, err := sqlite.WriterPragma(ctx, s, "temp_store")
	require.NoError(t, err)
	assert.Equal(t, "2", got, "temp_store on the writer: 2 is MEMORY")
	// Migrating sets it to FILE for the migrations and back after them.
	require.NoError(t, s.Migrate(ctx))
	got, err = sqlite.WriterPragma(ctx, s, "temp_store")
	require.NoError(t, err)
	assert.Equal(t, "2", got, "temp_store on the writer after migrating")
}
