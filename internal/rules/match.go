package rules

import (
	"net/http"
	"slices"
	"strings"
)

// Request is what matching looks at.
type Request struct {
	Host     string // lowercase, no port
	Scheme   string // "http" or "https"; "" when unknown
	Path     string // decoded URL path (r.URL.Path), starts with "/"
	RawQuery string
	// Header is read for Accept-Language and Cookie, only when a candidate
	// rule has such a condition.
	Header  http.Header
	Country string // from the site's trusted country header; "" unknown
}

// Match is the rule a request matched.
type Match struct {
	Rule  *Redirect
	Index int // position in the slice given to NewMatcher
	// To is the rule's target with :splat and :placeholders substituted
	// (percent-escaped, so To is a URL reference to parse with url.Parse)
	// and the request's query passed through when the rule does not
	// handle the query itself.
	To string
}

// Matcher finds the redirect rule for a request. It is compiled once per
// deploy, immutable, and safe for concurrent use.
type Matcher struct {
	rules []compiledRule
	any   *pathIndex            // rules without a host
	hosts map[string]*pathIndex // domain-level rules, by lowercase host
	loops []loopTarget          // target patterns checked at match time
}

// NewMatcher compiles rs, in order, into an index: fully literal paths in
// a map, patterned ones in a segment trie, so that a request costs a few
// lookups whatever the number of rules.
func NewMatcher(rs []Redirect) *Matcher {
	m := &Matcher{
		rules: make([]compiledRule, len(rs)),
		any:   newPathIndex(len(rs)),
	}
	own := slices.Clone(rs) // Match.Rule points here: the caller's slice may change
	for i := range own {
		cr := &m.rules[i]
		cr.compile(&own[i])
		m.addLoop(cr)
		ix := m.any
		if cr.host != "" {
			if m.hosts == nil {
				m.hosts = map[string]*pathIndex{}
			}
			if ix = m.hosts[cr.host]; ix == nil {
				ix = newPathIndex(0)
				m.hosts[cr.host] = ix
			}
		}
		ix.add(int32(i), cr)
	}
	return m
}

// Len is the number of rules.
func (m *Matcher) Len() int { return len(m.rules) }

// Match returns the first rule, in order, that matches req. With
// forcedOnly, only rules with Force are considered (the request path names
// an existing file, which shadows unforced rules).
func (m *Matcher) Match(req *Request, forcedOnly bool) (Match, bool) {
	if m == nil || len(m.rules) == 0 {
		return Match{}, false
	}
	p := req.Path
	if p == "" {
		p = "/"
	}
	np := trimSlash(p)

	var buf [32]int32
	cands := m.any.collect(buf[:0], np)
	if m.hosts != nil && req.Host != "" {
		if ix := m.hosts[lowerHost(req.Host)]; ix != nil {
			cands = ix.collect(cands, np)
		}
	}
	if len(cands) > 1 {
		slices.Sort(cands)
	}

	var st reqState
	var vbuf [8]string
	for _, i := range cands {
		cr := &m.rules[i]
		if (forcedOnly && !cr.r.Force) || cr.never {
			continue
		}
		var vals []string
		if cr.nslots <= len(vbuf) {
			vals = vbuf[:cr.nslots]
		} else {
			vals = make([]string, cr.nslots)
		}
		splat, ok := cr.matchPath(p, np, vals)
		if !ok || !cr.matchQuery(req.RawQuery, vals) || !cr.matchConditions(req, &st) {
			continue
		}
		if cr.selfLoop || cr.loop > 0 && m.loops[cr.loop-1].matches(req, p, np) {
			return Match{}, false // the redirect would loop: Netlify stops here
		}
		return Match{Rule: cr.r, Index: int(i), To: cr.target(vals, splat, req.RawQuery)}, true
	}
	return Match{}, false
}

// trimSlash drops one trailing slash: "/about/" and "/about" are the same
// page, on either side of a match.
func trimSlash(p string) string {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return p[:len(p)-1]
	}
	return p
}

func lowerHost(h string) string {
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// pathIndex holds the rules of one host (or of none).
type pathIndex struct {
	// exact maps a literal rule's normalised, decoded path to its first
	// rule; next chains rules with the same path, in order.
	exact map[string]int32
	next  map[int32]int32
	trie  *trieNode
}

func newPathIndex(n int) *pathIndex {
	return &pathIndex{exact: make(map[string]int32, n)}
}

func (ix *pathIndex) add(i int32, cr *compiledRule) {
	if cr.segs == nil {
		first, ok := ix.exact[cr.key]
		if !ok {
			ix.exact[cr.key] = i
			return
		}
		if ix.next == nil {
			ix.next = map[int32]int32{}
		}
		last := first
		for {
			n, ok := ix.next[last]
			if !ok {
				break
			}
			last = n
		}
		ix.next[last] = i
		return
	}
	if ix.trie == nil {
		ix.trie = &trieNode{}
	}
	ix.trie.insert(i, cr.segs)
}

// collect appends the rules that may match the normalised path np; each
// is verified by matchPath.
func (ix *pathIndex) collect(c []int32, np string) []int32 {
	if i, ok := ix.exact[np]; ok {
		c = append(c, i)
		for {
			n, ok := ix.next[i]
			if !ok {
				break
			}
			c = append(c, n)
			i = n
		}
	}
	if ix.trie != nil {
		rest := np
		if rest == "/" {
			rest = ""
		}
		c = ix.trie.collect(c, rest)
	}
	return c
}

// trieNode is one path segment of patterned rules.
type trieNode struct {
	lits   map[string]*trieNode
	param  *trieNode // a ":name" segment
	end    []int32   // rules whose pattern ends here
	splat  []int32   // rules ending in "/*" here: this path and all below
	prefix []int32   // rules whose next, last segment is "text*"
}

func (n *trieNode) insert(i int32, segs []segment) {
	for _, s := range segs {
		switch s.kind {
		case segSplat:
			n.splat = append(n.splat, i)
			return
		case segPrefix:
			n.prefix = append(n.prefix, i)
			return
		case segParam:
			if n.param == nil {
				n.param = &trieNode{}
			}
			n = n.param
		default:
			child := n.lits[s.text]
			if child == nil {
				if n.lits == nil {
					n.lits = map[string]*trieNode{}
				}
				child = &trieNode{}
				n.lits[s.text] = child
			}
			n = child
		}
	}
	n.end = append(n.end, i)
}

// collect walks rest ("" or "/seg/...") down both the literal and the
// placeholder branches.
func (n *trieNode) collect(c []int32, rest string) []int32 {
	c = append(c, n.splat...)
	if rest == "" {
		return append(c, n.end...)
	}
	seg, next := nextSegment(rest)
	c = append(c, n.prefix...)
	if child := n.lits[seg]; child != nil {
		c = child.collect(c, next)
	}
	if n.param != nil && seg != "" {
		c = n.param.collect(c, next)
	}
	return c
}

// nextSegment splits "/a/b" into "a" and "/b".
func nextSegment(rest string) (seg, next string) {
	rest = rest[1:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i], rest[i:]
	}
	return rest, ""
}
