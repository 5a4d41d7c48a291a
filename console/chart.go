package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
)

// chart is a stacked bar per day, laid out here so the template only
// draws rectangles: no script, no style attributes (the CSP forbids both).
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int
	Total         int
	Label         string
}

type bar struct {
	X, W   int
	Date   string
	Short  string
	Calls  int
	Rects  []rect
	Title  string
	LabelX int
}

type rect struct {
	Y, H  int
	Class string
}

const chartH, chartPlot, barW, gap = 160, 130, 40, 10

func drawChart(sum api.UsageSummary) chart {
	c := chart{Height: chartH}
	for _, d := range sum.Days {
		c.Max = max(c.Max, d.Calls)
		c.Total += d.Calls
	}
	scale := 1.0
	if c.Max > 0 {
		scale = float64(chartPlot) / float64(c.Max)
	}
	var parts []string
	for i, d := range sum.Days {
		b := bar{X: i*(barW+gap) + gap, W: barW, Date: d.Date, Calls: d.Calls}
		b.LabelX = b.X + barW/2
		if t, err := time.Parse(time.DateOnly, d.Date); err == nil {
			b.Short = t.Format("2 Jan")
		}
		y := chartPlot
		for _, s := range []struct {
			n     int
			class string
		}{{d.Status2xx, "s2xx"}, {d.Status4xx, "s4xx"}, {d.Status5xx, "s5xx"}} {
			h := int(float64(s.n)*scale + 0.5)
			if s.n > 0 && h == 0 {
				h = 1
			}
			y -= h
			b.Rects = append(b.Rects, rect{Y: y, H: h, Class: s.class})
		}
		b.Title = fmt.Sprintf("%s: %d calls (%d 2xx, %d 4xx, %d 5xx), p50 %.1f ms, p95 %.1f ms",
			d.Date, d.Calls, d.Status2xx, d.Status4xx, d.Status5xx, d.P50MS, d.P95MS)
		parts = append(parts, fmt.Sprintf("%s %d", b.Short, d.Calls))
		c.Bars = append(c.Bars, b)
	}
	c.Width = len(sum.Days)*(barW+gap) + gap
	c.Label = fmt.Sprintf("Calls per day over the last %d days, %d in all: %s", len(sum.Days), c.Total, strings.Join(parts, ", "))
	return c
}

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"ago": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		d := time.Since(*t)
		switch {
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return fmt.Sprintf("%d min ago", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%d h ago", int(d.Hours()))
		default:
			return t.UTC().Format("2006-01-02")
		}
	},
	"scopes": func(s []string) string {
		if len(s) == 0 {
			return "every scope"
		}
		return strings.Join(s, ", ")
	},
	"checked": func(form map[string][]string, name, value string) bool {
		for _, v := range form[name] {
			if v == value {
				return true
			}
		}
		return false
	},
	"list": func() []string {
		return []string{"api_key", "recruiter", "operator", "referee", "system"}
	},
	"scopeName": func(s auth.Scope) string { return string(s) },
	"json":      dataLine,
}

// dataLine shows an audit event's data as key=value pairs in key order,
// each value a string as it is and anything else as JSON: Go's %v showed
// nested input as map[limit:x], in a different order on each load.
func dataLine(m map[string]any) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, ok := m[k].(string)
		if !ok {
			b, err := json.Marshal(m[k])
			if err != nil {
				b = []byte(fmt.Sprint(m[k]))
			}
			v = string(b)
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}
