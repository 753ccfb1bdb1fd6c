package rules

import (
	"strconv"
	"strings"
)

// reqState caches what conditions read from a request, once per Match.
type reqState struct {
	langDone bool
	lang     string // the client's most preferred language, "" none
}

// matchConditions checks Language, Country and Cookie; all present ones
// must match, each by any of its values.
func (cr *compiledRule) matchConditions(req *Request, st *reqState) bool {
	if !cr.conds {
		return true
	}
	c := &cr.r.Conditions
	if len(c.Country) > 0 && !countryMatches(c.Country, req.Country) {
		return false
	}
	if len(c.Language) > 0 {
		if !st.langDone {
			st.lang, st.langDone = preferredLanguage(req), true
		}
		if !languageMatches(c.Language, st.lang) {
			return false
		}
	}
	if len(c.Cookie) > 0 && !hasCookie(req, c.Cookie) {
		return false
	}
	return true
}

func countryMatches(want []string, country string) bool {
	if country == "" {
		return false
	}
	for _, w := range want {
		if strings.EqualFold(w, country) {
			return true
		}
	}
	return false
}

// languageMatches reports whether the client's language is one of want:
// "en" covers "en" and "en-US", "en-US" only "en-US".
func languageMatches(want []string, lang string) bool {
	if lang == "" {
		return false
	}
	for _, w := range want {
		if strings.EqualFold(w, lang) ||
			(len(lang) > len(w) && lang[len(w)] == '-' && strings.EqualFold(lang[:len(w)], w)) {
			return true
		}
	}
	return false
}

// preferredLanguage returns the language of Accept-Language with the
// highest q (the first of equals), ignoring q=0, "*" and malformed
// entries.
func preferredLanguage(req *Request) string {
	if req.Header == nil {
		return ""
	}
	best, bestQ := "", 0.0
	for _, line := range req.Header.Values("Accept-Language") {
		for line != "" {
			var entry string
			entry, line, _ = strings.Cut(line, ",")
			tag, params, _ := strings.Cut(entry, ";")
			tag = strings.TrimSpace(tag)
			if tag == "" || tag == "*" {
				continue
			}
			q, ok := qValue(params)
			if ok && q > bestQ {
				best, bestQ = tag, q
			}
		}
	}
	return best
}

// qValue reads "q=0.8" from the parameters of an Accept-Language entry;
// 1 when absent.
func qValue(params string) (float64, bool) {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 || q > 1 {
			return 0, false
		}
		return q, true
	}
	return 1, true
}

// hasCookie reports whether the request carries any of the named cookies.
func hasCookie(req *Request, names []string) bool {
	if req.Header == nil {
		return false
	}
	for _, line := range req.Header.Values("Cookie") {
		for line != "" {
			var c string
			c, line, _ = strings.Cut(line, ";")
			name, _, _ := strings.Cut(c, "=")
			name = strings.TrimSpace(name)
			for _, n := range names {
				if n == name {
					return true
				}
			}
		}
	}
	return false
}
