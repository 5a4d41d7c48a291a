package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoginApprovedInChromium is the whole user path: veref login on a
// terminal, the printed URL opened in Chromium, the development sign-in,
// Approve on the console page; then the key in the opted-in file, whoami
// with it, logout revoking it.
func TestLoginApprovedInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	chrome := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chrome = p
			break
		}
	}
	if chrome == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("Chromium is required under CI; .ci/run installs it")
		}
		t.Skip("Chromium is not installed")
	}
	env := e2eEnv(t)
	srv := startDevProcess(t, env)
	env = append(env, "VEREF_API_URL="+srv.url, "VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS=1")

	login := startOnPTY(t, env, "login", "--no-browser")
	userCode := login.waitFor(t, ptyCode)[1]
	link := login.waitFor(t, regexp.MustCompile(`(http://\S+/app/cli\?code=[A-Z-]+)`))[1]

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	ctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel3()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#signin-recruiter_demo")),
		chromedp.Click(chromedp.CSS("#signin-recruiter_demo")), chromedp.WaitVisible(chromedp.CSS("#cli-form"))))
	code, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#cli-code")))
	require.NoError(t, err)
	host, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#cli-host")))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#cli-approve")), chromedp.WaitVisible(chromedp.CSS("#notice"))))
	assert.Equal(t, userCode, code, "the page shows the code the terminal shows")
	hostname, _ := os.Hostname()
	assert.Equal(t, hostname, host)

	require.Equal(t, 0, login.exit(t), login.screen.String())
	assert.Contains(t, login.screen.String(), "Logged in to "+srv.url)
	path := filepath.Join(envValue(env, "XDG_CONFIG_HOME"), "veref", "credentials.json")
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	stdout, stderr, exit := runBinary(t, env, "whoami", "-o", "json")
	require.Equal(t, 0, exit, stderr)
	var me map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &me))
	assert.Equal(t, "file", me["credentialSource"])
	assert.Equal(t, "recruiter_demo", me["recruiterId"])

	_, stderr, exit = runBinary(t, env, "logout")
	require.Equal(t, 0, exit, stderr)
	_, _, exit = runBinary(t, env, "whoami")
	assert.Equal(t, 4, exit)
}
