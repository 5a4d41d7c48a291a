package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/storetest"
)

// backend opens a store for a worker, an outage of that store (its
// database stops answering it, then answers again), and further handles on
// the same data for other instances, which the outage does not touch.
type backend struct {
	name string
	open func(t *testing.T) (st store.Store, outage storetest.Outage, other func() store.Store)
}

// outageTimeout bounds each storage call of the worker under test, so a
// call into the outage fails instead of waiting the test's minute.
const outageTimeout = 2 * time.Second

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) (store.Store, storetest.Outage, func() store.Store) {
			path := storetest.SQLiteFile(t)
			st := storetest.OpenSQLiteAt(t, path, outageTimeout)
			return st, storetest.NewSQLiteLock(t, path), func() store.Store { return storetest.OpenSQLiteAt(t, path, time.Minute) }
		}},
		{"postgres", func(t *testing.T) (store.Store, storetest.Outage, func() store.Store) {
			st, proxy, dsn := storetest.PostgresBehindProxy(t, outageTimeout)
			return st, proxy, func() store.Store {
				other, err := postgres.OpenWithTimeout(context.Background(), dsn, time.Minute)
				require.NoError(t, err)
				t.Cleanup(func() { _ = other.Close() })
				return other
			}
		}},
	}
}
