package postgres_test

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenPostgres(t) })
}

// Instances starting together migrate the same empty schema at once; the
// advisory lock must let exactly one apply each migration.
func TestMigrateConcurrently(t *testing.T) {
	url := storetest.PostgresURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		s, err := postgres.Open(ctx, url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Migrate(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	s, err := postgres.Open(ctx, url)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.CreateTenant(ctx, store.Tenant{ID: "ten_1", Name: "x"}))
	storetest.AssertMigratedOnce(t, stdlib.OpenDBFromPool(s.Pool()), os.DirFS("migrations"))
}

func TestUpgradeFromLegacyRunner(t *testing.T) {
	storetest.RunLegacyUpgrade(t, goose.DialectPostgres, os.DirFS("migrations"), func(t *testing.T) (*sql.DB, func() store.Store) {
		url := storetest.PostgresURL(t)
		db, err := sql.Open("pgx", url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		return db, func() store.Store {
			s, err := postgres.Open(context.Background(), url)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	})
}

func TestOpenUnavailable(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	assert.ErrorIs(t, err, store.ErrUnavailable)
}

func BenchmarkWrites(b *testing.B) { storetest.BenchmarkWrites(b, storetest.OpenPostgres(b)) }
