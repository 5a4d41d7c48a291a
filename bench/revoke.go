package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/store"
)

// revocationTrials starts a second instance on the same database and, with
// the first one under load, revokes warm keys and checks whether each
// instance refuses the very next request once the revocation has answered
// (and if not, for how long it went on accepting). The revocation is made
// by the benchmark's own store (the same KeyService the routes use), a
// third process on the database, so neither instance hears of it other
// than through the database; its answer waits for both to acknowledge
// (store/postgres/keyevents.go), which is the cost timed as "revoke took".
func (b *backend) revocationTrials(ctx context.Context, bin, tmp string, trials int) error {
	second, err := startServer(ctx, bin, b.dbURL, b.pepper, filepath.Join(tmp, b.kind+"-b.log"))
	if err != nil {
		return err
	}
	b.servers = append(b.servers, second)
	insts := []*proc{b.servers[0], second}

	loadCtx, stopLoad := context.WithCancel(ctx)
	var loadWG sync.WaitGroup
	var loadN, loadBad int64
	var loadMu sync.Mutex
	for range 8 {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			c := &http.Client{}
			for loadCtx.Err() == nil {
				st, err := send(loadCtx, c, request{url: insts[0].url + "/v1/api/me", headers: bearer(b.key["load"])})
				loadMu.Lock()
				if err == nil && st == 200 {
					loadN++
				} else if loadCtx.Err() == nil {
					loadBad++
				}
				loadMu.Unlock()
			}
		}()
	}
	defer func() { stopLoad(); loadWG.Wait() }()

	type obs struct {
		first   bool          // the first request after the revoke answered was refused
		elapsed time.Duration // revoke answered -> a refusal received
		tries   int
	}
	results := make([][]obs, len(insts))
	var took []time.Duration // the revoke call, commit and wait
	client := &http.Client{}
	for range trials {
		tok, id, err := b.newKey(ctx, "revoked")
		if err != nil {
			return err
		}
		for _, in := range insts {
			for range 2 { // the first verifies and caches, the second is answered from the cache
				if st, err := send(ctx, client, request{url: in.url + "/v1/api/me", headers: bearer(tok)}); err != nil || st != 200 {
					return fmt.Errorf("warming a key: status %d, %v", st, err)
				}
			}
		}
		start := time.Now()
		if _, err := b.keys.Revoke(ctx, benchTenant, id, "bench", api.Actor{Kind: store.ActorOperator, ID: "bench"}); err != nil {
			return err
		}
		committed := time.Now()
		took = append(took, committed.Sub(start))
		var wg sync.WaitGroup
		for i, in := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{}
				o := obs{}
				for time.Since(committed) < 10*time.Second {
					st, err := send(ctx, c, request{url: in.url + "/v1/api/me", headers: bearer(tok)})
					o.tries++
					if err == nil && st == http.StatusUnauthorized {
						o.elapsed, o.first = time.Since(committed), o.tries == 1
						break
					}
				}
				results[i] = append(results[i], o)
			}()
		}
		wg.Wait()
	}
	stopLoad()
	loadWG.Wait()

	fmt.Printf("\nrevocation across instances on PostgreSQL (%d trials; instance A under load from 8 other clients, %d requests answered, %d failed):\n", trials, loadN, loadBad)
	slices.Sort(took)
	fmt.Printf("  revoke took (commit, then waiting for both instances to evict): p50 %s, p99 %s, max %s\n",
		pct(took, 50), pct(took, 99), took[len(took)-1].Round(time.Microsecond))
	for i, rs := range results {
		var first int
		var ds []time.Duration
		var maxTries int
		for _, o := range rs {
			if o.first {
				first++
			}
			if o.elapsed == 0 {
				return fmt.Errorf("instance %c accepted a revoked key for 10s", 'A'+i)
			}
			ds = append(ds, o.elapsed)
			maxTries = max(maxTries, o.tries)
		}
		slices.Sort(ds)
		fmt.Printf("  instance %c: refused the very next request after the revoke answered in %d/%d trials; answered -> refusal p50 %s, p99 %s, max %s; at most %d requests accepted it\n",
			'A'+i, first, len(rs), pct(ds, 50), pct(ds, 99), ds[len(ds)-1].Round(time.Microsecond), maxTries-1)
	}
	return nil
}

// pct is the p-th percentile of sorted ds.
func pct(ds []time.Duration, p int) time.Duration {
	return ds[len(ds)*p/100].Round(time.Microsecond)
}
