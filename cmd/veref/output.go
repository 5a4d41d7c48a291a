package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/pflag"
)

// output is the -o/--output choice every printing command takes, with
// --json as a boolean alias where --json is free.
type output struct {
	format string
	json   bool
}

func (o *output) flags(fs *pflag.FlagSet, jsonAlias bool) {
	fs.StringVarP(&o.format, "output", "o", "table", "output format: table or json")
	if jsonAlias {
		fs.BoolVar(&o.json, "json", false, "print JSON (same as -o json)")
	}
}

// asJSON says whether to print JSON; an unknown format is a usage error.
func (o *output) asJSON() (bool, error) {
	if o.json {
		return true, nil
	}
	switch o.format {
	case "json":
		return true, nil
	case "table", "":
		return false, nil
	default:
		return false, usageError{fmt.Sprintf("--output must be table or json, not %q", o.format)}
	}
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	// Terminal and jq readers want "<" as typed, not \u003c: this is not HTML.
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeRawJSON re-indents the server's JSON as received, so fields added
// later still show.
func writeRawJSON(out io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	return writeJSON(out, v)
}

// cell makes stored text safe for a terminal: control characters (escape
// sequences, carriage returns, tabs that would break the table) and
// bidirectional overrides (which reorder what the eye reads) are shown as
// escapes instead of acting.
func cell(s string) string { return escapeTerminal(s, false) }

// prose is cell for text printed as paragraphs: newlines and tabs stay.
func prose(s string) string { return escapeTerminal(s, true) }

func escapeTerminal(s string, keepLayout bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case keepLayout && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\\' && !keepLayout:
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isBidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isBidiControl is every character that changes the display order of text
// (Unicode's Bidi_Control property) plus the invisible format characters
// that can hide them.
func isBidiControl(r rune) bool {
	return unicode.Is(unicode.Bidi_Control, r) || r == 0x2028 || r == 0x2029 || r == 0xfeff
}

// table prints rows aligned, every cell escaped.
func table(out io.Writer, titles []string, rows [][]string) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(titles, "\t"))
	for _, r := range rows {
		vals := make([]string, len(r))
		for i, v := range r {
			vals[i] = cell(v)
		}
		fmt.Fprintln(w, strings.Join(vals, "\t"))
	}
	return w.Flush()
}
