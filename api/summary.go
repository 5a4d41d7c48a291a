package api

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

const (
	summaryMaxDays = 92
	// summaryMaxRows bounds the rows one summary reads; a key busier than
	// this over the range is summarised over its first rows and says so.
	summaryMaxRows = 200_000
	summaryTopN    = 5
)

// UsageSummary is a key's calls per UTC day.
type UsageSummary struct {
	KeyID     string     `json:"keyId"`
	From      time.Time  `json:"from"`
	To        time.Time  `json:"to"`
	Truncated bool       `json:"truncated,omitempty" doc:"The range held more rows than one summary reads; narrow it"`
	Days      []UsageDay `json:"days" doc:"Every day of the range, oldest first, including days without calls"`
}

// UsageDay is one day of a summary.
type UsageDay struct {
	Date      string      `json:"date" doc:"YYYY-MM-DD (UTC)"`
	Calls     int         `json:"calls"`
	Status2xx int         `json:"status2xx"`
	Status4xx int         `json:"status4xx"`
	Status5xx int         `json:"status5xx"`
	P50MS     float64     `json:"p50Ms"`
	P95MS     float64     `json:"p95Ms"`
	TopRoutes []NameCount `json:"topRoutes" doc:"REST routes by calls"`
	TopTools  []NameCount `json:"topTools" doc:"MCP and agent tools by calls"`
}

// NameCount is a route or tool and how often it was called.
type NameCount struct {
	Name  string `json:"name"`
	Calls int    `json:"calls"`
}

// Summarise reads a key's usage rows in [from, to) and aggregates them by
// day. Zero from/to default to the 30 days up to now.
func Summarise(ctx context.Context, st store.Queries, tenantID, keyID string, from, to, now time.Time) (UsageSummary, error) {
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.AddDate(0, 0, -30)
	}
	from, to = from.UTC(), to.UTC()
	if !from.Before(to) {
		return UsageSummary{}, tools.Invalid("to", "to must be after from")
	}
	if to.Sub(from) > summaryMaxDays*24*time.Hour {
		return UsageSummary{}, tools.Invalid("from", "a summary covers at most 92 days")
	}
	rows, err := st.UsageBetween(ctx, tenantID, keyID, from, to, summaryMaxRows+1)
	if err != nil {
		return UsageSummary{}, err
	}
	sum := UsageSummary{KeyID: keyID, From: from, To: to, Days: []UsageDay{}}
	if len(rows) > summaryMaxRows {
		rows, sum.Truncated = rows[:summaryMaxRows], true
	}
	byDay := map[string][]store.Usage{}
	for _, u := range rows {
		d := u.At.UTC().Format(time.DateOnly)
		byDay[d] = append(byDay[d], u)
	}
	first := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	for d := first; d.Before(to); d = d.AddDate(0, 0, 1) {
		sum.Days = append(sum.Days, summariseDay(d.Format(time.DateOnly), byDay[d.Format(time.DateOnly)]))
	}
	return sum, nil
}

func summariseDay(date string, rows []store.Usage) UsageDay {
	day := UsageDay{Date: date, Calls: len(rows), TopRoutes: []NameCount{}, TopTools: []NameCount{}}
	durations := make([]float64, 0, len(rows))
	routes, toolCalls := map[string]int{}, map[string]int{}
	for _, u := range rows {
		switch {
		case u.Status >= 500:
			day.Status5xx++
		case u.Status >= 400:
			day.Status4xx++
		default:
			day.Status2xx++
		}
		durations = append(durations, u.DurationMS)
		if name, ok := strings.CutPrefix(u.Endpoint, "mcp:tools/call:"); ok {
			toolCalls[name]++
		} else if u.Surface == tools.SurfaceREST {
			routes[u.Endpoint]++
		}
	}
	sort.Float64s(durations)
	day.P50MS, day.P95MS = percentile(durations, 0.50), percentile(durations, 0.95)
	day.TopRoutes, day.TopTools = top(routes), top(toolCalls)
	return day
}

// percentile is nearest-rank over sorted values; 0 for none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func top(m map[string]int) []NameCount {
	out := make([]NameCount, 0, len(m))
	for k, v := range m {
		out = append(out, NameCount{Name: k, Calls: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > summaryTopN {
		out = out[:summaryTopN]
	}
	return out
}
