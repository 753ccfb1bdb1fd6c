package rules

import (
	"strconv"
	"strings"
)

// ParseRedirects parses a _redirects file. Each line is
//
//	from [key=value ...] to [status[!]] [Key=v1,v2 ...]
//
// with "#" starting a comment, or "from status[!]" for a forward rule
// ("/app/* 200": to is "/app/:splat"). Rules have Source RedirectsFile.
func ParseRedirects(data []byte) ([]Redirect, []Error) {
	if errs, big := tooLarge(RedirectsFile, data); big {
		return nil, errs
	}
	el := errorList{file: RedirectsFile}
	text := string(data)
	// Sized up front: growing a slice of 45,000 large structs costs more
	// than parsing them.
	rs := make([]Redirect, 0, min(ruleLines(text), maxRules))
	lines(text, func(n int, line string) bool {
		line = trimJS(line)
		if line == "" || line[0] == '#' {
			return true
		}
		raw, ok := parseRedirectLine(line, n, &el)
		if !ok {
			return true
		}
		if len(rs) == maxRules {
			el.add(n, "more than %d rules; this one and the rest of the file are ignored", maxRules)
			return false
		}
		if r, ok := raw.finish(RedirectsFile, n, &el); ok {
			rs = append(rs, r)
		}
		return true
	})
	if len(rs) == 0 {
		rs = nil
	}
	return rs, el.errs
}

// parseRedirectLine splits a trimmed, non-comment line into its parts, as
// upstream's line parser does.
func parseRedirectLine(line string, n int, el *errorList) (rawRedirect, bool) {
	toks := strings.FieldsFunc(line, isJSSpace)
	for i, t := range toks {
		if t[0] == '#' {
			toks = toks[:i]
			break
		}
	}
	var raw rawRedirect
	raw.from = toks[0]
	parts := toks[1:]
	if len(parts) == 0 {
		el.add(n, "Missing destination path/URL after %q", raw.from)
		return raw, false
	}
	if raw.from[0] != '/' && !isURL(raw.from) {
		el.add(n, `"from" must start with "/", "http:" or "https:": %q`, raw.from)
		return raw, false
	}

	var queryToks, condToks []string
	statusTok := ""
	if isStatusToken(parts[0]) {
		statusTok, condToks = parts[0], parts[1:]
	} else {
		ti := -1
		for i, p := range parts {
			if p[0] == '/' || isURL(p) {
				ti = i
				break
			}
		}
		if ti < 0 {
			el.add(n, `The destination path/URL must start with "/", "http:" or "https:": %q`, strings.Join(parts, " "))
			return raw, false
		}
		queryToks, raw.to, raw.hasTo = parts[:ti], parts[ti], true
		if rest := parts[ti+1:]; len(rest) > 0 {
			statusTok, condToks = rest[0], rest[1:]
		}
	}

	for _, t := range queryToks {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			el.add(n, "query parameter %q must be written name=value", t)
			return raw, false
		}
		if raw.query == nil {
			raw.query = make(map[string]string, len(queryToks))
		}
		raw.query[k] = v
	}

	if statusTok != "" {
		digits, force := strings.CutSuffix(statusTok, "!")
		status, err := strconv.Atoi(digits)
		if err != nil || !isDigits(digits) {
			el.add(n, "Invalid status code: %q", statusTok)
			return raw, false
		}
		raw.status, raw.hasStatus, raw.force = status, true, force
	}

	sign := ""
	hasSigned := false
	for _, t := range condToks {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			el.add(n, "condition %q must be written Name=value", t)
			return raw, false
		}
		switch strings.ToLower(k) {
		case "signed":
			// "signed" wins over its older name "Sign", wherever written.
			raw.signed, hasSigned = v, true
			continue
		case "sign":
			sign = v
			continue
		}
		if err := setCondition(&raw.conditions, k, strings.Split(v, ",")); err != nil {
			el.add(n, "%v", err)
			return raw, false
		}
	}
	if !hasSigned {
		raw.signed = sign
	}
	return raw, true
}

// ruleLines counts the lines that may hold a rule: not blank, not a
// comment.
func ruleLines(s string) int {
	n := 0
	lines(s, func(_ int, line string) bool {
		line = strings.TrimLeft(line, " \t\r")
		if line != "" && line[0] != '#' {
			n++
		}
		return true
	})
	return n
}

// isStatusToken reports whether t is a status ("301", "200!") rather than
// a destination.
func isStatusToken(t string) bool {
	return isDigits(strings.TrimSuffix(t, "!"))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
