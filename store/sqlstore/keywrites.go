package sqlstore

import (
	"context"
	"strings"
)

// keyWrites notices statements that change api_keys, so a backend whose
// change feed is asynchronous (PostgreSQL's NOTIFY) can still evict its own
// process's cache before the writing call returns: a key revoked through
// this instance is refused by this instance on the very next request.
// Recognising the statement here, where every query passes, covers key
// changes added later without their having to remember it.
type keyWrites struct {
	store   *Store // outside a transaction: report at once
	inTx    bool
	touched bool // inside one: reported by Store.tx after commit
}

func (q *Q) wrote(ctx context.Context, query string) {
	if q.keys == nil || !changesKeys(query) {
		return
	}
	if q.keys.inTx {
		q.keys.touched = true
		return
	}
	q.keys.store.keysChanged(ctx)
}

// changesKeys is true for an UPDATE or DELETE of api_keys other than the
// usage flush's last_used_at update.
func changesKeys(query string) bool {
	query = strings.TrimSpace(query)
	var rest string
	switch {
	case strings.HasPrefix(query, "UPDATE api_keys "):
		rest = query[len("UPDATE api_keys "):]
	case strings.HasPrefix(query, "DELETE FROM api_keys"):
		return true
	default:
		return false
	}
	set, _, _ := strings.Cut(rest, " WHERE ")
	return !(strings.HasPrefix(set, "SET last_used_at =") && !strings.Contains(set, ","))
}

// OnKeysChanged sets what runs after this process changes any stored key
// (once per statement outside a transaction, once per committed
// transaction), before the writing call returns: it may wait, so that the
// caller answers only once the change is in force everywhere.
func (s *Store) OnKeysChanged(fn func(ctx context.Context)) { s.keysHook.Store(&fn) }

func (s *Store) keysChanged(ctx context.Context) {
	if fn := s.keysHook.Load(); fn != nil {
		(*fn)(ctx)
	}
}
