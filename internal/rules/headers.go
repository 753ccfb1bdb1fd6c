package rules

import (
	"strings"
)

// ParseHeaders parses a _headers file: a path line (starting with "/" once
// trimmed) followed by indented or unindented "Name: value" lines. Blocks
// with the same path collapse into one rule, where a later block's value
// for a header replaces the earlier one; a name repeated inside one block
// gets several values. Rules have Source HeadersFile.
func ParseHeaders(data []byte) ([]HeaderRule, []Error) {
	if errs, big := tooLarge(HeadersFile, data); big {
		return nil, errs
	}
	el := errorList{file: HeadersFile}
	var rules []HeaderRule
	byFor := map[string]int{} // for → index in rules
	cur := -1                 // the current block's rule
	var inBlock []string      // names already set by the current block
	lines(string(data), func(n int, line string) bool {
		line = trimJS(line)
		if line == "" || line[0] == '#' {
			return true
		}
		if line[0] == '/' {
			i, ok := byFor[line]
			if !ok {
				if len(rules) == maxRules {
					el.add(n, "more than %d paths; this one and the rest of the file are ignored", maxRules)
					return false
				}
				i = len(rules)
				rules = append(rules, HeaderRule{For: line, Source: HeadersFile, Line: n})
				byFor[line] = i
			}
			cur, inBlock = i, inBlock[:0]
			return true
		}
		rawName, rawValue, ok := strings.Cut(line, ":")
		if !ok {
			// Upstream skips such a line silently; saying so is kinder.
			el.add(n, `neither a path (starting with "/") nor a "Name: value" header: %q`, line)
			return true
		}
		name, value := trimJS(rawName), trimJS(rawValue)
		switch {
		case name == "":
			el.add(n, "Missing header name")
			return true
		case value == "":
			el.add(n, "Missing header value for %q", name)
			return true
		case cur < 0:
			el.add(n, "Path should come before header %q", name)
			return true
		}
		if err := checkHeader(name, value); err != nil {
			el.add(n, "%v; it is left out", err)
			return true
		}
		r := &rules[cur]
		j := headerIndex(r.Values, name)
		switch {
		case j < 0:
			r.Values = append(r.Values, Header{Name: name, Values: []string{value}})
		case containsFold(inBlock, name):
			r.Values[j].Values = append(r.Values[j].Values, value)
		default: // set by an earlier block for the same path
			r.Values[j].Values = []string{value}
		}
		if !containsFold(inBlock, name) {
			inBlock = append(inBlock, name)
		}
		return true
	})
	// A path without headers is no rule (upstream drops it too).
	out := rules[:0]
	for _, r := range rules {
		if len(r.Values) > 0 {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return out, el.errs
}

// headerIndex finds name among hs; header names are case-insensitive.
func headerIndex(hs []Header, name string) int {
	for i := range hs {
		if strings.EqualFold(hs[i].Name, name) {
			return i
		}
	}
	return -1
}

func containsFold(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}
