// Command bench is Veref's load benchmark: one command that builds the
// server, starts a bare net/http handler, the server on SQLite and (with
// VEREF_TEST_DATABASE_URL set) on PostgreSQL, drives them in one run with
// wrk (or a Go load generator when wrk is missing), and prints req/s,
// p50/p99 and the ratios the performance targets are stated in, the usage
// and audit rows written against the requests answered, and how long a
// revocation takes to be refused by a second instance.
//
//	go run ./bench                      # SQLite only
//	VEREF_TEST_DATABASE_URL=postgres://… go run ./bench
//	go run ./bench -d 3s -rounds 1      # quicker
//
// Everything listens on 127.0.0.1. Targets are measured in rounds that
// interleave them, so machine noise falls on all alike; compare the ratios
// of one run, not absolute numbers across machines.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare" {
		runBare()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "faults" {
		if err := runFaults(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench faults:", err)
			os.Exit(1)
		}
		return
	}
	dur := flag.Duration("d", 5*time.Second, "length of each load run")
	rounds := flag.Int("rounds", 3, "rounds; each target's median is reported")
	conns := flag.Int("c", 32, "concurrent connections")
	trials := flag.Int("trials", 100, "revocation trials (PostgreSQL)")
	flag.Parse()
	if err := run(*dur, *rounds, *conns, *trials); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// target is one URL under load.
type target struct {
	name    string
	backend string // "", sqlite, postgres
	req     request
	results []result
	// refused: every answer is expected to be a non-2xx (the guard-only
	// target answers 404 after authenticating).
	refused bool
}

func run(dur time.Duration, rounds, conns, trials int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "veref-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin, err := buildServer(ctx, tmp)
	if err != nil {
		return err
	}
	gen := loadGenerator()
	fmt.Printf("load generator: %s, %d connections, %s per run, %d rounds; %d CPUs shared with everything else on this machine\n\n",
		gen.name(), conns, dur, rounds, numCPU())

	bare, err := startBare(ctx)
	if err != nil {
		return err
	}
	defer bare.stop()
	targets := []*target{{name: "bare handler GET /me", req: request{url: bare.url + "/v1/api/me"}}}

	var backends []*backend
	sq, err := newSQLite(ctx, tmp)
	if err != nil {
		return err
	}
	backends = append(backends, sq)
	if dsn := os.Getenv("VEREF_TEST_DATABASE_URL"); dsn != "" {
		pg, err := newPostgres(ctx, dsn)
		if err != nil {
			return err
		}
		defer pg.drop()
		backends = append(backends, pg)
	} else {
		fmt.Println("VEREF_TEST_DATABASE_URL is unset: PostgreSQL and the revocation timing are skipped")
	}
	for _, b := range backends {
		if err := b.start(ctx, bin, tmp); err != nil {
			return err
		}
		defer b.stopAll()
		targets = append(targets, b.targets()...)
	}

	for r := range rounds {
		for _, t := range targets {
			res, err := gen.run(ctx, t.req, conns, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if t.refused {
				res.errors = 0
			}
			if res.errors > 0 {
				return fmt.Errorf("%s: %d requests failed (non-2xx or socket errors)", t.name, res.errors)
			}
			t.results = append(t.results, res)
			fmt.Fprintf(os.Stderr, "round %d  %-48s %9.0f req/s\n", r+1, t.name, res.rps)
		}
	}
	if rounds > 0 { // -rounds 0 runs only the revocation trials
		fmt.Println()
		printTable(targets)
		printRatios(targets)
	}

	for _, b := range backends {
		if b.kind == "postgres" && trials > 0 {
			if err := b.revocationTrials(ctx, bin, tmp, trials); err != nil {
				return err
			}
		}
	}
	// Stopping the servers flushes their queues; only then are rows counted.
	for _, b := range backends {
		b.stopAll()
	}
	fmt.Println("\nrows written against requests answered (wrk counts completed responses; a request in flight when a run ends is answered and logged but not counted, so rows may exceed it by up to one per connection per run):")
	for _, b := range backends {
		if err := b.printRows(ctx, targets); err != nil {
			return err
		}
	}
	return nil
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func printTable(ts []*target) {
	fmt.Printf("%-48s %10s %10s %10s\n", "target (median of rounds)", "req/s", "p50", "p99")
	for _, t := range ts {
		fmt.Printf("%-48s %10.0f %10s %10s\n", t.name, median(t.results, func(r result) float64 { return r.rps }),
			dur(median(t.results, func(r result) float64 { return float64(r.p50) })),
			dur(median(t.results, func(r result) float64 { return float64(r.p99) })))
	}
	fmt.Println()
}

func dur(ns float64) string { return time.Duration(ns).Round(time.Microsecond).String() }

func find(ts []*target, name string) *target {
	for _, t := range ts {
		if t.name == name {
			return t
		}
	}
	return nil
}

// printRatios compares each round's numbers with the same round's
// reference, then takes the median: the rounds share the machine's noise.
func printRatios(ts []*target) {
	ratio := func(label, num, den string, goal float64) {
		a, b := find(ts, num), find(ts, den)
		if a == nil || b == nil {
			return
		}
		rs := make([]float64, 0, len(a.results))
		for i := range min(len(a.results), len(b.results)) {
			rs = append(rs, a.results[i].rps/b.results[i].rps)
		}
		slices.Sort(rs)
		m := rs[len(rs)/2]
		verdict := "holds"
		if m < goal {
			verdict = "MISSED"
		}
		fmt.Printf("%-58s %5.2f   (target >= %.1f: %s; rounds %s)\n", label, m, goal, verdict, fmtList(rs))
	}
	fmt.Println("ratios (per round, median):")
	for _, be := range []string{"sqlite", "postgres"} {
		ratio("authenticated GET /me on "+be+" / bare handler", meName(be), "bare handler GET /me", 0.6)
		ratio("authentication alone (guard, 404) on "+be+" / bare handler", guardName(be), "bare handler GET /me", 0.6)
	}
	for _, be := range []string{"sqlite", "postgres"} {
		ratio("MCP candidates_list / REST candidates?limit=10 on "+be, mcpName(be), restName(be), 0.8)
	}
}

func fmtList(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}

func meName(be string) string    { return "GET /v1/api/me, " + be }
func guardName(be string) string { return "authenticated 404 (guard only), " + be }
func restName(be string) string  { return "GET /v1/api/candidates?limit=10, " + be }
func mcpName(be string) string   { return "MCP tools/call candidates_list, " + be }

// buildServer builds cmd/veref into dir and returns the binary's path.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "veref")
	fmt.Println("building the server…")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/veref")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build: %w (run from the module root)", err)
	}
	return bin, nil
}
