package rules

import (
	"net/url"
	"strings"
)

type segKind uint8

const (
	segLit    segKind = iota
	segParam          // ":name", one non-empty segment
	segSplat          // a final "*": zero or more segments
	segPrefix         // a final "text*": a segment starting with text, and the rest
)

type segment struct {
	kind segKind
	text string // literal text (decoded), or the prefix of segPrefix
	slot int    // segParam: where its value goes
}

// queryCond is one entry of Redirect.Query.
type queryCond struct {
	key   string // decoded
	value string // decoded literal; unused when slot >= 0
	slot  int    // capture slot, or -1 for a literal value
}

// compiledRule is a Redirect prepared for matching.
type compiledRule struct {
	r     *Redirect
	host  string
	key   string    // literal rules: the normalised, decoded path
	segs  []segment // patterned rules; nil for literal ones
	query []queryCond
	// nslots counts placeholder values: path placeholders, then query
	// captures.
	nslots int
	tmpl   []tmplPart // nil when To has nothing to substitute
	// passQuery: append the request's query to To (the rule has no query
	// conditions and To none of its own).
	passQuery bool
	never     bool // a Role condition: sitehost has no identities
	conds     bool // has Language, Country or Cookie conditions
	// Redirects only, see loopTarget: selfLoop, the rule always loops;
	// loop, index+1 of its target pattern in Matcher.loops (0: none).
	selfLoop bool
	loop     int32
}

func (cr *compiledRule) compile(r *Redirect) {
	cr.r = r
	cr.host = strings.ToLower(r.Host)
	cr.never = len(r.Conditions.Role) > 0
	c := r.Conditions
	cr.conds = len(c.Language) > 0 || len(c.Country) > 0 || len(c.Cookie) > 0

	path := r.Path
	if path == "" && r.Host == "" {
		path = r.From
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path // netlify.toml accepts "old-path"
	}
	var names slotNames // placeholder name → slot
	cr.segs, cr.key = compilePath(trimSlash(path), &names)

	// A query capture named like a path placeholder shares its slot: the
	// query's value, checked last, is the one substituted.
	for k, v := range r.Query {
		q := queryCond{key: unescapeQuery(k), slot: -1}
		if name, ok := strings.CutPrefix(v, ":"); ok && name != "" {
			q.slot = names.slot(name)
		} else {
			q.value = unescapeQuery(v)
		}
		cr.query = append(cr.query, q)
	}
	cr.nslots = len(names)
	cr.tmpl = compileTarget(r.To, names, cr.hasSplat())
	cr.passQuery = len(r.Query) == 0 && !strings.Contains(r.To, "?")
}

// slotNames numbers a rule's placeholder names; nil until the first one, as
// most rules have none.
type slotNames map[string]int

func (s *slotNames) slot(name string) int {
	if i, ok := (*s)[name]; ok {
		return i
	}
	if *s == nil {
		*s = slotNames{}
	}
	(*s)[name] = len(*s)
	return len(*s) - 1
}

func (cr *compiledRule) hasSplat() bool {
	n := len(cr.segs)
	return n > 0 && (cr.segs[n-1].kind == segSplat || cr.segs[n-1].kind == segPrefix)
}

// compilePath splits a normalised rule path into segments. Literal
// segments are percent-decoded (request paths are), each on its own, so
// "%2F" cannot merge or split placeholders. A path with no placeholder or
// splat is literal: segs is nil and key is its decoded form.
func compilePath(path string, names *slotNames) (segs []segment, key string) {
	if path == "/" {
		return nil, "/"
	}
	if isLiteralPath(path) {
		if !strings.Contains(path, "%") {
			return nil, path // most rules: no allocation
		}
		var b strings.Builder
		for _, s := range strings.Split(path[1:], "/") {
			b.WriteByte('/')
			b.WriteString(unescapePath(s))
		}
		return nil, b.String()
	}
	raw := strings.Split(path[1:], "/")
	for i, s := range raw {
		last := i == len(raw)-1
		switch {
		case len(s) > 1 && s[0] == ':':
			segs = append(segs, segment{kind: segParam, text: s[1:], slot: names.slot(s[1:])})
		case last && s == "*":
			segs = append(segs, segment{kind: segSplat})
		case last && strings.HasSuffix(s, "*"):
			segs = append(segs, segment{kind: segPrefix, text: unescapePath(strings.TrimSuffix(s, "*"))})
		default:
			// "*" elsewhere is a literal character.
			for _, part := range strings.Split(unescapePath(s), "/") {
				segs = append(segs, segment{kind: segLit, text: part})
			}
		}
	}
	return segs, ""
}

// isLiteralPath reports whether a rule path has neither a ":name"
// segment nor a final segment ending in "*".
func isLiteralPath(path string) bool {
	rest := path[1:]
	for {
		seg, next, more := strings.Cut(rest, "/")
		if len(seg) > 1 && seg[0] == ':' {
			return false
		}
		if !more {
			return !strings.HasSuffix(seg, "*")
		}
		rest = next
	}
}

func unescapePath(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s // as written, when it is not valid escaping
}

func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// matchPath matches p (its normalised form np) against a rule's pattern,
// storing placeholder values in vals. The splat is taken from p, so it
// keeps the request's trailing slash.
func (cr *compiledRule) matchPath(p, np string, vals []string) (splat string, ok bool) {
	if cr.segs == nil {
		return "", np == cr.key
	}
	rest := np
	if rest == "/" {
		rest = ""
	}
	for _, s := range cr.segs {
		if s.kind == segSplat {
			off := len(np) - len(rest) + 1 // past the "/" before the splat
			if off >= len(p) {
				return "", true
			}
			return p[off:], true
		}
		if rest == "" {
			return "", false
		}
		seg, next := nextSegment(rest)
		switch s.kind {
		case segLit:
			if seg != s.text {
				return "", false
			}
		case segParam:
			if seg == "" {
				return "", false
			}
			vals[s.slot] = seg
		case segPrefix:
			if !strings.HasPrefix(seg, s.text) {
				return "", false
			}
			splat = p[len(np)-len(rest)+1+len(s.text):]
			if splat == "/" {
				splat = ""
			}
			return splat, true
		}
		rest = next
	}
	return "", rest == ""
}

// matchQuery checks the rule's query conditions against the request's raw
// query, capturing values into vals.
func (cr *compiledRule) matchQuery(rawQuery string, vals []string) bool {
	for _, q := range cr.query {
		v, ok := queryValue(rawQuery, q.key)
		if !ok {
			return false
		}
		if q.slot >= 0 {
			vals[q.slot] = v
		} else if v != q.value {
			return false
		}
	}
	return true
}

// queryValue returns the first value of key in a raw query, without
// building a url.Values.
func queryValue(rawQuery, key string) (string, bool) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		if unescapeQuery(k) == key {
			return unescapeQuery(v), true
		}
	}
	return "", false
}
