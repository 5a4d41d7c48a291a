package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// request is what every connection sends, again and again.
type request struct {
	url     string
	method  string // GET when empty
	body    string
	headers map[string]string
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	answered int // responses completed within the run
	errors   int
}

type generator interface {
	name() string
	run(ctx context.Context, r request, conns int, d time.Duration) (result, error)
}

func loadGenerator() generator {
	if p, err := exec.LookPath("wrk"); err == nil {
		return wrk{path: p}
	}
	return goGen{}
}

func numCPU() int { return runtime.NumCPU() }

// wrk drives the target from its own process, on one thread as the
// issue's measurements did.
type wrk struct{ path string }

func (wrk) name() string { return "wrk" }

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkPercent = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func (w wrk) run(ctx context.Context, r request, conns int, d time.Duration) (result, error) {
	script, err := os.CreateTemp("", "veref-bench-*.lua")
	if err != nil {
		return result{}, err
	}
	defer os.Remove(script.Name())
	var lua strings.Builder
	method := r.method
	if method == "" {
		method = "GET"
	}
	fmt.Fprintf(&lua, "wrk.method = %q\n", method)
	if r.body != "" {
		fmt.Fprintf(&lua, "wrk.body = %s\n", luaString(r.body))
	}
	for k, v := range r.headers {
		fmt.Fprintf(&lua, "wrk.headers[%q] = %s\n", k, luaString(v))
	}
	if _, err := script.WriteString(lua.String()); err != nil {
		return result{}, err
	}
	script.Close()
	secs := max(1, int(d.Round(time.Second)/time.Second))
	out, err := exec.CommandContext(ctx, w.path, "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s",
		"--latency", "-s", filepath.Clean(script.Name()), r.url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	return parseWrk(string(out))
}

func luaString(s string) string {
	return "[==[" + s + "]==]"
}

func parseWrk(out string) (result, error) {
	var res result
	m := wrkRPS.FindStringSubmatch(out)
	t := wrkTotal.FindStringSubmatch(out)
	if m == nil || t == nil {
		return res, fmt.Errorf("unexpected wrk output:\n%s", out)
	}
	res.rps, _ = strconv.ParseFloat(m[1], 64)
	res.answered, _ = strconv.Atoi(t[1])
	if n := wrkNon2xx.FindStringSubmatch(out); n != nil {
		res.errors, _ = strconv.Atoi(n[1])
	}
	for _, p := range wrkPercent.FindAllStringSubmatch(out, -1) {
		d, err := time.ParseDuration(p[2] + p[3])
		if err != nil {
			return res, err
		}
		if p[1] == "50" {
			res.p50 = d
		} else {
			res.p99 = d
		}
	}
	return res, nil
}

// goGen is the fallback when wrk is not installed: one goroutine per
// connection, each with its own keep-alive connection.
type goGen struct{}

func (goGen) name() string { return "Go load generator (wrk not found)" }

func (goGen) run(ctx context.Context, r request, conns int, d time.Duration) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	var errs int
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			var lat []time.Duration
			var bad int
			for ctx.Err() == nil {
				t0 := time.Now()
				status, err := send(ctx, c, r)
				if ctx.Err() != nil {
					break
				}
				if err != nil || status >= 300 {
					bad++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if len(all) == 0 {
		return result{errors: errs}, fmt.Errorf("no request succeeded")
	}
	slices.Sort(all)
	return result{rps: float64(len(all)) / el.Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100],
		answered: len(all), errors: errs}, nil
}

func send(ctx context.Context, c *http.Client, r request) (int, error) {
	status, _, err := exchange(ctx, c, r, false)
	return status, err
}

// exchange sends r and returns the status and, with keep, the body.
func exchange(ctx context.Context, c *http.Client, r request, keep bool) (int, []byte, error) {
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = bytes.NewReader([]byte(r.body))
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url, body)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	if keep {
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil, err
}
