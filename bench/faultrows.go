package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// printRows matches the run's requests, by trace id, to the usage and
// audit rows written for them. Every answered request that got past
// authentication has a usage row (refusals of the key lookup have none);
// every created candidate its audit row, in the same transaction; every
// MCP read its batched audit row.
func (f *faultRun) printRows(shots []shot) error {
	ids := make([]string, len(shots))
	for i, s := range shots {
		ids[i] = s.traceID
	}
	usage, err := f.traceIDs("SELECT trace_id FROM api_key_usage WHERE trace_id = ANY($1)", ids)
	if err != nil {
		return err
	}
	audit, err := f.traceIDs("SELECT trace_id FROM audit_events WHERE trace_id = ANY($1)", ids)
	if err != nil {
		return err
	}
	var ok2xx, usageLost, usageRows, created, auditLost, reads, readLost, toolErrs, toolErrsAudited, unacked, unackedSaved int
	var lostBefore []time.Duration // how long before the SIGKILL each lost row's request was sent
	for _, s := range shots {
		if usage[s.traceID] {
			usageRows++
		}
		if s.status >= 200 && s.status < 300 {
			ok2xx++
			if !usage[s.traceID] {
				usageLost++
				lostBefore = append(lostBefore, f.killedAt.Sub(s.at))
			}
		}
		switch {
		case s.kind == "post" && s.status == 201:
			created++
			if !audit[s.traceID] {
				auditLost++
			}
		case s.kind == "post":
			unacked++
			if audit[s.traceID] {
				unackedSaved++
			}
		case s.kind == "mcp" && s.status == 200 && s.toolError:
			toolErrs++
			if audit[s.traceID] {
				toolErrsAudited++
			}
		case s.kind == "mcp" && s.status == 200:
			reads++
			if !audit[s.traceID] {
				readLost++
			}
		}
	}
	fmt.Printf("  usage rows: %d for %d requests; 2xx answers %d, of them without a usage row (lost) %d\n",
		usageRows, len(shots), ok2xx, usageLost)
	if usageLost > 0 && !f.killedAt.IsZero() {
		fmt.Printf("    lost usage rows by when their request was sent before the SIGKILL: %s\n", lostHistogram(lostBefore))
	}
	fmt.Printf("  audit rows: candidates created (201) %d, without their audit row (lost) %d; MCP reads answered %d, without their audit row (lost) %d\n",
		created, auditLost, reads, readLost)
	fmt.Printf("  MCP calls answered with a tool error (the storage failure, inside a 200) %d, of them with an audit row %d\n",
		toolErrs, toolErrsAudited)
	fmt.Printf("  mutations not acknowledged (5xx or no answer) %d, of them committed anyway %d (a retry with the same Idempotency-Key answers the saved result)\n",
		unacked, unackedSaved)
	return nil
}

func (f *faultRun) traceIDs(sql string, ids []string) (map[string]bool, error) {
	conn, err := pgx.Connect(f.ctx, f.b.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(f.ctx)
	rows, err := conn.Query(f.ctx, sql, ids)
	if err != nil {
		return nil, err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(got))
	for _, id := range got {
		out[id] = true
	}
	return out, nil
}

// printLogs counts the servers' log lines: the access log's one per
// request, the rest by message, and the count lines standing for the
// repeats they held back.
func printLogs(paths []string) error {
	var total, access, other, counts, repeats int
	byMsg := map[string]int{}
	for _, p := range paths {
		fh, err := os.Open(p)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			total++
			var l struct {
				Level     string `json:"level"`
				Message   string `json:"message"`
				RepeatsOf string `json:"repeats_of"`
				Repeated  int    `json:"repeated"`
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				other++
				continue
			}
			switch {
			case l.Message == "request":
				access++
			case l.RepeatsOf != "":
				counts++
				repeats += l.Repeated
				byMsg[l.Level+" "+l.RepeatsOf+" (count lines)"]++
			case l.Level == "warn" || l.Level == "error":
				byMsg[l.Level+" "+l.Message]++
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return err
		}
	}
	var lines []string
	for m, n := range byMsg {
		lines = append(lines, fmt.Sprintf("%6d  %s", n, m))
	}
	slices.Sort(lines)
	slices.Reverse(lines)
	fmt.Printf("  log: %d lines, %d of them the access log; %d count lines standing for %d repeats held back; %d not JSON\n",
		total, access, counts, repeats, other)
	for _, l := range lines {
		fmt.Println("   " + strings.TrimRight(l, " "))
	}
	return nil
}

// lostHistogram buckets durations: how long before the kill the requests
// whose rows were lost were sent.
func lostHistogram(ds []time.Duration) string {
	edges := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	counts := make([]int, len(edges)+1)
	for _, d := range ds {
		i, _ := slices.BinarySearch(edges, d)
		counts[i]++
	}
	var parts []string
	lo := "0"
	for i, e := range edges {
		parts = append(parts, fmt.Sprintf("%s-%s: %d", lo, e, counts[i]))
		lo = e.String()
	}
	parts = append(parts, fmt.Sprintf(">%s: %d", lo, counts[len(edges)]))
	return strings.Join(parts, ", ")
}
