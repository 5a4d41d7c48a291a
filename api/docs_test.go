package api_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/store/storetest"
)

// chromium finds Debian's chromium; under CI its absence is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// The reference renders from this server alone: every request the page
// makes goes to it, none is refused by the CSP, and the operations show.
func TestDocsRenderOffline(t *testing.T) {
	bin := chromium(t)
	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{})

	res, err := http.Get(e.URL + "/docs")
	require.NoError(t, err)
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self'")
	assert.NotContains(t, csp, "unsafe-inline")
	assert.NotContains(t, csp, "http")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun,
		// No network: anything not on loopback goes to a proxy that is not there.
		chromedp.ProxyServer("http://127.0.0.1:9"),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	var foreign, problems []string
	self, _ := url.Parse(e.URL)
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if u, err := url.Parse(ev.Request.URL); err == nil && u.Scheme != "data" && u.Host != self.Host {
				foreign = append(foreign, ev.Request.URL)
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				problems = append(problems, ev.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, ev.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if string(ev.Type) == "error" {
				problems = append(problems, "console.error")
			}
		}
	}))
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, log.Enable, cdp.Empty{})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(e.URL+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(".opblock")),
	))
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".info .title")))
	require.NoError(t, err)
	ops, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".opblock").length`))
	require.NoError(t, err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	if dir := os.Getenv("VEREF_SCREENSHOT_DIR"); dir != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "docs.png"), shot, 0o644))
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, foreign, "the page fetched from elsewhere")
	assert.Empty(t, problems, "errors in the page (CSP refusals show here)")
	assert.True(t, strings.HasPrefix(title, "Veref API"), title)
	assert.Greater(t, ops, 10, "operations rendered")
	assert.Greater(t, len(shot), 20_000, "a screenshot with content")
}
