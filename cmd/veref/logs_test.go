package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/logdedup"
)

// A worker polling a database that is down warns on every poll; the log
// gets the first warning and then a count, not one line a second.
func TestWorkerWarningsAreDeduplicated(t *testing.T) {
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	repeats := logdedup.New(10*time.Second, func() time.Time { return at })
	var buf bytes.Buffer
	logf := workerLog(zerolog.New(&buf), repeats)
	for i := range 9 {
		logf("warn", "outbox worker", map[string]any{"error": "dial tcp 127.0.0.1:5432: connect: connection refused"})
		logf("info", "e-mail not sent (log mailer)", map[string]any{"message": "out_" + string(rune('a'+i))})
	}
	at = at.Add(10 * time.Second)
	repeats.Flush()

	var warns, infos []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if m["level"] == "warn" {
			warns = append(warns, m)
		} else {
			infos = append(infos, m)
		}
	}
	assert.Len(t, infos, 9, "info lines are not de-duplicated")
	require.Len(t, warns, 2)
	assert.Equal(t, "outbox worker", warns[0]["message"])
	assert.Equal(t, "dial tcp 127.0.0.1:5432: connect: connection refused", warns[0]["error"])
	assert.EqualValues(t, 8, warns[1]["repeated"])
}
