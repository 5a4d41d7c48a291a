package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/storetest"
)

// A migration that changes a column's type while an instance keeps
// running (a rolling upgrade): that instance's connection keeps the row
// description its COPY read before, and COPY fails on every row. The batch
// is written by the INSERT path instead of waiting for a restart.
func TestBatchesSurviveAColumnTypeChange(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	s, err := postgres.Open(ctx, oneConnection(url)) // so the next COPY reuses its description
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Migrate(ctx))
	row := func() store.Usage {
		now := time.Now().UTC()
		return store.Usage{ID: store.NewIDAt("use", now), KeyID: "key_1", TenantID: "ten_1", Environment: auth.Test, Surface: "rest",
			Endpoint: "GET /v1/api/me", Method: "GET", Status: 200, DurationMS: 0.5, IPHash: "h", TraceID: "t", At: now}
	}
	require.NoError(t, s.InsertUsage(ctx, []store.Usage{row()}))

	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "ALTER TABLE api_key_usage ALTER COLUMN status TYPE bigint")
	require.NoError(t, err)

	require.NoError(t, s.InsertUsage(ctx, []store.Usage{row(), row()}))
	var n int
	require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM api_key_usage").Scan(&n))
	require.Equal(t, 3, n)
}

// oneConnection limits the pool of dsn, a URL or key=value string, to one
// connection.
func oneConnection(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return dsn + " pool_max_conns=1"
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&pool_max_conns=1"
	}
	return dsn + "?pool_max_conns=1"
}
