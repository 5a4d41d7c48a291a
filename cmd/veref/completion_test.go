package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bashCompletion is the bash-completion package's loader, which the bash
// script of every cobra CLI (gh, kubectl, veref) builds on.
const bashCompletion = "/usr/share/bash-completion/bash_completion"

// TestBashCompletionScriptCompletes loads `veref completion bash` into a
// real bash, as a user's ~/.bashrc would, and asks it to complete.
func TestBashCompletionScriptCompletes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if _, err := os.Stat(bashCompletion); err != nil {
		msg := "bash-completion is not installed (apt-get install bash-completion)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := verefBinary(t)
	complete := func(line string) []string {
		t.Helper()
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		script := `source ` + bashCompletion + `
source <(veref completion bash)
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=` + strconv.Itoa(len(words)-1) + `
COMP_LINE='` + line + `'
COMP_POINT=${#COMP_LINE}
__start_veref veref "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", "--norc", "--noprofile", "-c", script)
		cmd.Env = []string{"PATH=" + filepath.Dir(bin) + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		var stderr strings.Builder
		cmd.Stderr = &stderr // bash says compopt runs outside a completion; only COMPREPLY matters
		out, err := cmd.Output()
		require.NoError(t, err, stderr.String())
		return strings.Fields(string(out))
	}
	assert.Equal(t, []string{"references", "reports"}, complete("veref re"))
	assert.Contains(t, complete("veref references "), "send-invitations")
	assert.Contains(t, complete("veref reports "), "revoke-share")
	assert.ElementsMatch(t, []string{"draft", "sent", "in_progress", "completed", "cancelled"}, complete("veref references list --status "))
	assert.Contains(t, complete("veref whoami --"), "--output")
}
