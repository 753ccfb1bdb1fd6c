package dashboard

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sitehost/sitehost/internal/units"
)

// errorLineMax is how much of an error the overview shows; the site page
// has the whole text.
const errorLineMax = 200

func (h *Handler) funcs() template.FuncMap {
	return template.FuncMap{
		"ago":        func(t time.Time) string { return relative(h.now(), t) },
		"isoTime":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"absTime":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"short":      func(v any) string { return shortSHA(fmt.Sprint(v)) },
		"ms":         humanMS,
		"bytes":      units.Bytes,
		"stateClass": stateClass,
		"firstLine":  firstLine,
		"event":      func(kind string) string { return strings.ReplaceAll(kind, "_", " ") }, // rolled_back
		"asset":      h.assetURL,
	}
}

// relative says how long ago t was, as a person would ("3 minutes ago").
func relative(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	case d < 60*24*time.Hour:
		s = plural(int(d/(24*time.Hour)), "day")
	default:
		// Past two months a date says more than a count of days.
		return t.UTC().Format("2 Jan 2006")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// shortSHA is git's 7-character abbreviation.
func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

// humanMS formats a duration given in milliseconds ("1.2 s"); 0 is "not
// run or not known" in api.Timings, shown as a dash.
func humanMS(ms int64) string {
	if ms <= 0 {
		return "—"
	}
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return strconv.FormatInt(ms, 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", d/time.Minute, (d%time.Minute)/time.Second)
	default:
		return fmt.Sprintf("%d h %d min", d/time.Hour, (d%time.Hour)/time.Minute)
	}
}

// stateClass maps a site, channel or deploy state to its badge's class,
// "state-synced", "state-failed"…; the stylesheet colours them. Only
// letters survive, so the class is safe whatever the state says.
func stateClass(state any) string {
	s := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r
		}
		return -1
	}, strings.ToLower(fmt.Sprint(state)))
	if s == "" {
		s = "unknown"
	}
	return "state-" + s
}

// firstLine is the first non-empty line of an error, cut at errorLineMax
// characters: enough to recognise it in a list.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if utf8.RuneCountInString(line) > errorLineMax {
			line = string([]rune(line)[:errorLineMax-1]) + "…"
		}
		return line
	}
	return ""
}
