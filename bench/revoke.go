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
// the first one under load, revokes warm keys and times how long each
// instance goes on accepting them. The revocation is committed by the
// benchmark's own store (the same KeyService the routes use), a third
// process on the database, so neither instance hears of it other than
// through the database.
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
		first   bool          // the first request after the commit was refused
		elapsed time.Duration // commit returned -> a refusal received
		tries   int
	}
	results := make([][]obs, len(insts))
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
		if _, err := b.keys.Revoke(ctx, benchTenant, id, "bench", api.Actor{Kind: store.ActorOperator, ID: "bench"}); err != nil {
			return err
		}
		committed := time.Now()
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
		fmt.Printf("  instance %c: refused on the first request after the commit in %d/%d trials; commit -> refusal p50 %s, p99 %s, max %s; at most %d requests accepted it\n",
			'A'+i, first, len(rs), ds[len(ds)/2].Round(time.Microsecond), ds[len(ds)*99/100].Round(time.Microsecond),
			ds[len(ds)-1].Round(time.Microsecond), maxTries-1)
	}
	return nil
}
