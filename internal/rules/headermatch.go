package rules

import (
	"net/http"
	"slices"
	"strings"
)

// HeaderMatcher applies header rules to responses. It is compiled once per
// deploy, immutable, and safe for concurrent use.
type HeaderMatcher struct {
	rules [][]compiledHeader // by rule index
	exact map[string][]int32 // literal patterns, case-folded and normalised
	globs []globRule         // patterned ones, in order
}

type compiledHeader struct {
	name   string   // canonical
	values []string // capacity clipped: appending to it copies
}

type globRule struct {
	index int32
	prog  []globTok
}

// NewHeaderMatcher compiles hs. A `for` pattern matches as the regexp
// upstream builds from it would: case-insensitively, "*" as any run of
// characters (slashes included), ":name" as one segment, repeated slashes
// in the pattern collapsed, a trailing slash optional.
func NewHeaderMatcher(hs []HeaderRule) *HeaderMatcher {
	m := &HeaderMatcher{rules: make([][]compiledHeader, len(hs)), exact: make(map[string][]int32, len(hs))}
	for i, h := range hs {
		for _, v := range h.Values {
			// Parse already refused these; a manifest from elsewhere is
			// checked again rather than trusted.
			if len(v.Values) == 0 || checkValues(v.Name, v.Values) != nil {
				continue
			}
			m.rules[i] = append(m.rules[i], compiledHeader{
				name:   http.CanonicalHeaderKey(v.Name),
				values: slices.Clip(slices.Clone(v.Values)),
			})
		}
		if len(m.rules[i]) == 0 {
			continue
		}
		key, prog := compileFor(h.For)
		if prog == nil {
			m.exact[key] = append(m.exact[key], int32(i))
		} else {
			m.globs = append(m.globs, globRule{index: int32(i), prog: prog})
		}
	}
	return m
}

// Empty reports whether no rule can set a header.
func (m *HeaderMatcher) Empty() bool {
	return m == nil || (len(m.exact) == 0 && len(m.globs) == 0)
}

// Apply sets on dst the headers of every rule matching path, in rule order:
// each header name a matching rule names replaces what dst had for it (so
// _headers overrides the server's defaults, e.g. Cache-Control), and values
// of several matching rules for the same name accumulate (multi-value),
// without repeating an identical value. dst's value slices may share
// storage with m: replace or append to them, never write into them.
func (m *HeaderMatcher) Apply(dst http.Header, path string) {
	if m.Empty() {
		return
	}
	var exact []int32
	if len(m.exact) > 0 {
		var buf [128]byte
		exact = m.exact[string(appendFold(buf[:0], trimSlash(path)))]
	}
	var gbuf [16]int32
	globs := gbuf[:0]
	if len(m.globs) > 0 {
		var memo [32]uint64
		for i := range m.globs {
			if globMatch(m.globs[i].prog, path, memo[:]) {
				globs = append(globs, m.globs[i].index)
			}
		}
	}

	var tbuf [16]string
	touched := tbuf[:0]
	apply := func(i int32) {
		for _, h := range m.rules[i] {
			if !slices.Contains(touched, h.name) {
				touched = append(touched, h.name)
				dst[h.name] = h.values
				continue
			}
			for _, v := range h.values {
				if !slices.Contains(dst[h.name], v) {
					dst[h.name] = append(dst[h.name], v)
				}
			}
		}
	}
	// Merge the two sorted lists, so rules apply in their order.
	for len(exact) > 0 || len(globs) > 0 {
		if len(globs) == 0 || (len(exact) > 0 && exact[0] < globs[0]) {
			apply(exact[0])
			exact = exact[1:]
		} else {
			apply(globs[0])
			globs = globs[1:]
		}
	}
}

// compileFor turns a `for` pattern into the folded key of a literal
// pattern, or a program for a patterned one. It follows upstream's
// getForRegExp: split on "/", trim each part's end, drop empty parts, then
// ^/part/part/?$ with ":x" as ([^/]+), a "*" part as an optional slash and
// (.*), and "*" inside a part as (.*).
func compileFor(forPath string) (key string, prog []globTok) {
	var parts []string
	patterned := false
	for _, p := range strings.Split(forPath, "/") {
		p = strings.TrimRightFunc(p, isJSSpace)
		if p == "" {
			continue
		}
		parts = append(parts, p)
		patterned = patterned || p[0] == ':' || strings.Contains(p, "*")
	}
	if !patterned {
		return string(appendFold(nil, "/"+strings.Join(parts, "/"))), nil
	}
	var lit []rune // pending literal text, folded
	flush := func() {
		if len(lit) > 0 {
			prog = append(prog, globTok{kind: globLit, lit: lit})
			lit = nil
		}
	}
	lit = append(lit, '/')
	for i, p := range parts {
		if i > 0 {
			lit = append(lit, '/')
		}
		switch {
		case p[0] == ':':
			flush()
			prog = append(prog, globTok{kind: globSeg})
		case p == "*":
			// The slash before a "*" part is optional: "/a/*" is
			// ^/a/?(.*)/?$, which also matches "/abc".
			lit = lit[:len(lit)-1]
			flush()
			prog = append(prog, globTok{kind: globOptSlash}, globTok{kind: globStar})
		default:
			// Unlike upstream, which pastes the rest of such a part into
			// its regexp unescaped, the other characters are literal.
			for j, piece := range strings.Split(p, "*") {
				if j > 0 {
					flush()
					prog = append(prog, globTok{kind: globStar})
				}
				lit = appendFoldRunes(lit, piece)
			}
		}
	}
	flush()
	prog = append(prog, globTok{kind: globOptSlash})
	return "", prog
}
