package api_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/sqlite"
	"github.com/verefwork/veref/store/sqlstore"
	"github.com/verefwork/veref/store/storetest"
)

// eventually waits for cond, failing after a bound that only guards against
// a hang: nothing here measures how long anything took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// twoInstances is two servers, each with its own pool, key cache and
// listener, over one PostgreSQL schema: two replicas behind a balancer.
func twoInstances(t *testing.T) (a, b *apitest.Env, sa, sb *postgres.Store) {
	url := storetest.PostgresURL(t)
	open := func() *postgres.Store {
		s, err := postgres.Open(context.Background(), url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		require.NoError(t, s.Migrate(context.Background()))
		return s
	}
	sa, sb = open(), open()
	a, b = apitest.New(t, sa, apitest.Options{}), apitest.New(t, sb, apitest.Options{})
	a.Tenant("acme")
	eventually(t, "both instances listening", func() bool { return a.KeyCache.Live() && b.KeyCache.Live() })
	return a, b, sa, sb
}

func revoke(t *testing.T, e *apitest.Env, key string) {
	t.Helper()
	p := e.Principal(key)
	_, err := e.Keys.Revoke(context.Background(), p.TenantID, p.KeyID, "test", api.Actor{Kind: store.ActorOperator, ID: "t"})
	require.NoError(t, err)
}

func TestRevocationOnOneInstanceIsRefusedByTheOther(t *testing.T) {
	a, b, _, _ := twoInstances(t)
	key := a.Key("acme", auth.Test)
	require.EqualValues(t, 200, a.Do("GET", "/v1/api/me", key, nil).Status)
	require.Equal(t, 1, a.KeyCache.Len(), "A now answers this key from its cache")

	revoke(t, b, key)
	// The NOTIFY is sent when B's transaction commits; A evicts on hearing it.
	eventually(t, "A evicts the revoked key", func() bool { return a.KeyCache.Len() == 0 })
	r := a.Do("GET", "/v1/api/me", key, nil)
	assert.EqualValues(t, 401, r.Status)
	assert.EqualValues(t, problem.AuthRevokedKey, r.Code())
	assert.Equal(t, 0, a.KeyCache.Len())
}

func TestAnyKeyChangeEvictsButLastUsedDoesNot(t *testing.T) {
	a, b, _, sb := twoInstances(t)
	key := a.Key("acme", auth.Test)
	require.EqualValues(t, 200, a.Do("GET", "/v1/api/me", key, nil).Status)
	a.FlushUsage() // moves last_used_at: must not evict
	require.EqualValues(t, 200, a.Do("GET", "/v1/api/me", key, nil).Status)
	assert.Equal(t, 1, a.KeyCache.Len())

	// A change made by a path the cache knows nothing about (here an
	// operator's UPDATE) evicts too: the trigger covers every writer.
	p := a.Principal(key)
	past := time.Now().Add(-time.Minute)
	_, err := sb.Pool().Exec(context.Background(), "UPDATE api_keys SET expires_at = $1 WHERE id = $2", past, p.KeyID)
	require.NoError(t, err)
	eventually(t, "A evicts the changed key", func() bool { return a.KeyCache.Len() == 0 })
	assert.EqualValues(t, problem.AuthExpiredKey, a.Do("GET", "/v1/api/me", key, nil).Code())
	_ = b
}

func TestDroppedListenerBypassesTheCacheUntilItListensAgain(t *testing.T) {
	a, b, sa, _ := twoInstances(t)
	dropped := make(chan error, 1)
	resume := make(chan struct{})
	sa.OnWatchError(func(err error) { dropped <- err; <-resume })

	key1, key2 := a.Key("acme", auth.Test), a.Key("acme", auth.Test)
	require.EqualValues(t, 200, a.Do("GET", "/v1/api/me", key1, nil).Status)
	require.Equal(t, 1, a.KeyCache.Len())

	// Cut A's LISTEN connection from the server side.
	pid := sa.ListenerPID()
	require.NotZero(t, pid)
	terminate(t, b, pid)
	<-dropped // A noticed; its reconnect waits for us

	assert.False(t, a.KeyCache.Live())
	assert.Equal(t, 0, a.KeyCache.Len(), "the cache was cleared when the listener dropped")
	// A revocation nobody on A can hear is still refused by A.
	revoke(t, b, key1)
	assert.EqualValues(t, problem.AuthRevokedKey, a.Do("GET", "/v1/api/me", key1, nil).Code())
	require.EqualValues(t, 200, a.Do("GET", "/v1/api/me", key2, nil).Status)
	assert.Equal(t, 0, a.KeyCache.Len(), "nothing is cached while not listening")

	close(resume)
	eventually(t, "A listens again", a.KeyCache.Live)
	require.EqualValues(t, 200, a.Do("GET", "/v1/api/me", key2, nil).Status)
	assert.Equal(t, 1, a.KeyCache.Len())
	revoke(t, b, key2)
	eventually(t, "A evicts after reconnecting", func() bool { return a.KeyCache.Len() == 0 })
	assert.EqualValues(t, problem.AuthRevokedKey, a.Do("GET", "/v1/api/me", key2, nil).Code())
}

func terminate(t *testing.T, e *apitest.Env, pid uint32) {
	t.Helper()
	pg := e.Store.(*postgres.Store)
	var ok bool
	require.NoError(t, pg.Pool().QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&ok))
	require.True(t, ok)
}

func TestSQLiteRevocationEvictsDirectly(t *testing.T) {
	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{})
	e.Tenant("acme")
	require.True(t, e.KeyCache.Live())
	key := e.Key("acme", auth.Test)
	require.EqualValues(t, 200, e.Do("GET", "/v1/api/me", key, nil).Status)
	require.Equal(t, 1, e.KeyCache.Len())
	e.FlushUsage()
	require.Equal(t, 1, e.KeyCache.Len(), "moving last_used_at evicts nothing")
	revoke(t, e, key)
	// No waiting: the writer's hook evicted before the revocation committed.
	assert.Equal(t, 0, e.KeyCache.Len())
	assert.EqualValues(t, problem.AuthRevokedKey, e.Do("GET", "/v1/api/me", key, nil).Code())
}

// Another process writing the same SQLite file (veref admin keys revoke
// beside a running server) is not seen by this process's writer hook; the
// change counter its triggers keep is.
func TestSQLiteRevocationByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "veref.db")
	st, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(context.Background()))
	e := apitest.New(t, st, apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	require.Equal(t, 200, e.Do("GET", "/v1/api/me", key, nil).Status)
	require.Equal(t, 1, e.KeyCache.Len())

	// A connection of its own, without the server's hook: another process.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Exec("UPDATE api_keys SET revoked_at = ? WHERE id = ?",
		time.Now().UTC().Format(sqlstore.SQLiteTimeFormat), e.Principal(key).KeyID)
	require.NoError(t, err)
	eventually(t, "the server notices the other process's change", func() bool { return e.KeyCache.Len() == 0 })
	assert.EqualValues(t, problem.AuthRevokedKey, e.Do("GET", "/v1/api/me", key, nil).Code())
}
