package sqlite

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/verefwork/veref/auth"
)

// Every write of this process goes through one writer connection, so a
// pre-update hook on it sees every change to api_keys, including those made
// by queries added later (suspension, rolling, limits): eviction needs no
// cooperation from them. Another process writing the same file (an admin
// command) is seen through a change counter that triggers keep (migration
// 0011, named 0010b before goose) and WatchKeys polls.

// writers maps a writer DSN to the stores listening on it.
var writers = struct {
	sync.RWMutex
	m map[string][]*keyEvents
}{m: map[string][]*keyEvents{}}

func init() {
	sqlite.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, dsn string) error {
		hr, ok := c.(sqlite.HookRegisterer)
		if !ok || !strings.Contains(dsn, writerMark) {
			return nil
		}
		hr.RegisterPreUpdateHook(func(d sqlite.SQLitePreUpdateData) { keyWritten(dsn, d) })
		return nil
	})
}

// writerMark is in the writer's DSN only; readers never write.
const writerMark = "_txlock=immediate"

// keyEvents fans a store's api_keys changes out to its watchers.
type keyEvents struct {
	mu    sync.Mutex
	sinks map[*auth.KeyEvents]auth.KeyEvents
}

func keyWritten(dsn string, d sqlite.SQLitePreUpdateData) {
	if d.TableName != "api_keys" || d.Op == sqlite3.SQLITE_INSERT {
		return // a new key is not cached anywhere yet
	}
	writers.RLock()
	evs := writers.m[dsn]
	writers.RUnlock()
	if len(evs) == 0 {
		return
	}
	prefix := ""
	old := make([]any, d.Count())
	if err := d.Old(old...); err == nil && len(old) > lastUsedColumn {
		prefix, _ = old[prefixColumn].(string)
		if d.Op == sqlite3.SQLITE_UPDATE && onlyLastUsed(d, old) {
			return // every usage flush does this; it changes nothing a cache holds
		}
	}
	for _, e := range evs {
		e.evict(prefix) // "" (unreadable row) clears everything
	}
}

// Positions of api_keys.prefix and last_used_at in 0001_init.sql; columns
// are only ever added after them.
const (
	prefixColumn   = 4
	lastUsedColumn = 13
)

// onlyLastUsed reports whether an update changes last_used_at alone.
func onlyLastUsed(d sqlite.SQLitePreUpdateData, old []any) bool {
	cur := make([]any, len(old))
	if err := d.New(cur...); err != nil {
		return false
	}
	for i := range old {
		if i != lastUsedColumn && !reflect.DeepEqual(old[i], cur[i]) {
			return false
		}
	}
	return true
}

func (e *keyEvents) evict(prefix string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.sinks {
		s.Evict(prefix)
	}
}

// WatchKeys feeds ev with evictions until ctx ends. Eviction happens in the
// writing statement itself, before it commits, and the cache only keeps
// records read through the writer (FreshKeyByPrefix), which waits for that
// commit: nothing stale can be cached after a change.
func (s *Store) WatchKeys(ctx context.Context, ev auth.KeyEvents) error {
	s.events.mu.Lock()
	s.events.sinks[&ev] = ev
	s.events.mu.Unlock()
	ev.SetLive(true)
	s.pollEpoch(ctx, ev)
	ev.SetLive(false)
	s.events.mu.Lock()
	delete(s.events.sinks, &ev)
	s.events.mu.Unlock()
	return nil
}

// epochPoll is how often the change counter is read: the longest another
// process's revocation goes unseen.
const epochPoll = 100 * time.Millisecond

// pollEpoch clears ev whenever the change counter moves; this process's
// own changes move it too, and were evicted already. Until the counter can
// be read (an unmigrated file), it keeps trying.
func (s *Store) pollEpoch(ctx context.Context, ev auth.KeyEvents) {
	t := time.NewTicker(epochPoll)
	defer t.Stop()
	last := int64(-1)
	for {
		var n int64
		if err := s.read.QueryRowContext(ctx, "SELECT n FROM api_key_epoch WHERE id = 1").Scan(&n); err == nil {
			if last >= 0 && n != last {
				ev.Evict("")
			}
			last = n
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// FreshKeyByPrefix implements auth.FreshKeyLookup: it reads on the writer,
// which no uncommitted or in-flight change can be ahead of.
func (s *Store) FreshKeyByPrefix(ctx context.Context, prefix string) (auth.KeyRecord, error) {
	return s.Store.KeyByPrefixOn(ctx, s.write, prefix)
}

func (s *Store) registerEvents(writerDSN string) {
	s.events = &keyEvents{sinks: map[*auth.KeyEvents]auth.KeyEvents{}}
	s.writerDSN = writerDSN
	writers.Lock()
	writers.m[writerDSN] = append(writers.m[writerDSN], s.events)
	writers.Unlock()
}

func (s *Store) unregisterEvents() {
	writers.Lock()
	defer writers.Unlock()
	evs := writers.m[s.writerDSN]
	for i, e := range evs {
		if e == s.events {
			evs = append(evs[:i:i], evs[i+1:]...)
			break
		}
	}
	if len(evs) == 0 {
		delete(writers.m, s.writerDSN)
	} else {
		writers.m[s.writerDSN] = evs
	}
}
