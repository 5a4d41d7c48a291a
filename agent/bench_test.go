package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/auth"
)

// BenchmarkTimeToFirstAnswerText measures how long a caller waits for the
// first text of an answer the model writes in 20 pieces, 2ms apart (40ms of
// generation): as server-sent events, where text is forwarded as it comes,
// and as JSON, which waits for the whole run. Reported as first-text-ms.
func BenchmarkTimeToFirstAnswerText(b *testing.B) {
	const pieces, gap = 20, 2 * time.Millisecond
	slow := streamReply{}
	for i := range pieces {
		slow = append(slow, chunk(modelPro, map[string]any{"role": "assistant", "content": "word" + string(rune('a'+i)) + " "}, ""), gap)
	}
	slow = append(slow, chunk(modelPro, map[string]any{}, "stop"))
	h := newHarness(b, withKey(agent.Config{}), func(n int, req captured) (int, any) {
		if req.Req.Stream {
			return 200, slow
		}
		time.Sleep(pieces * gap)
		return 200, answerReply(modelPro, strings.Repeat("word ", pieces))
	})
	key := h.Key("acme", auth.Test)
	body, _ := json.Marshal(map[string]any{"message": "hi"})

	for _, mode := range []string{"json", "stream"} {
		b.Run(mode, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				req, _ := http.NewRequest("POST", h.URL+"/v1/api/agent", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				if mode == "stream" {
					req.Header.Set("Accept", "text/event-stream")
				}
				start := time.Now()
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				if mode == "stream" {
					sc := bufio.NewScanner(res.Body)
					for sc.Scan() && sc.Text() != "event: answer_delta" {
					}
					total += time.Since(start)
				} else {
					_, _ = io.Copy(io.Discard, res.Body)
					total += time.Since(start)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "first-text-ms")
		})
	}
}
