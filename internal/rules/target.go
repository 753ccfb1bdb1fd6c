package rules

import (
	"strings"
)

// tmplPart is a piece of a rule's To: literal text, or a value to insert.
type tmplPart struct {
	lit   string
	slot  int  // value slot; slotLit for literal text, slotSplat for the splat
	query bool // inside To's query: escaped as a query value, not a path
}

const (
	slotLit   = -1
	slotSplat = -2
)

// compileTarget splits to into literal text and ":name" tokens naming a
// placeholder of the rule (or ":splat"). A token is ":" and a run of
// [A-Za-z0-9_], so ":id" never replaces part of ":identifier"; a token
// naming nothing stays as written. It returns nil when there is nothing
// to substitute.
func compileTarget(to string, names slotNames, hasSplat bool) []tmplPart {
	var parts []tmplPart
	lit := 0 // start of the pending literal text
	inQuery := false
	for i := 0; i < len(to); i++ {
		switch to[i] {
		case '?':
			inQuery = true
			continue
		case '#':
			inQuery = false
			continue
		case ':':
		default:
			continue
		}
		j := i + 1
		for j < len(to) && isNameByte(to[j]) {
			j++
		}
		name := to[i+1 : j]
		slot, ok := names[name]
		if name == "splat" && hasSplat {
			slot, ok = slotSplat, true
		}
		if name == "" || !ok {
			continue
		}
		if lit < i {
			parts = append(parts, tmplPart{lit: to[lit:i], slot: slotLit})
		}
		parts = append(parts, tmplPart{slot: slot, query: inQuery})
		lit = j
		i = j - 1
	}
	if parts == nil {
		return nil
	}
	if lit < len(to) {
		parts = append(parts, tmplPart{lit: to[lit:], slot: slotLit})
	}
	return parts
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// target builds the URL a match leads to. Values are decoded path or query
// text, so they are escaped for where they land: a path keeps its slashes,
// while a query value escapes "&" and "=".
func (cr *compiledRule) target(vals []string, splat, rawQuery string) string {
	to := cr.r.To // the common case: no allocation
	if cr.tmpl != nil {
		var b strings.Builder
		b.Grow(len(to) + len(splat) + 8)
		for _, p := range cr.tmpl {
			var v string
			switch p.slot {
			case slotLit:
				b.WriteString(p.lit)
				continue
			case slotSplat:
				v = splat
			default:
				v = vals[p.slot]
			}
			if p.query {
				writeEscaped(&b, v, queryMode)
			} else {
				writeEscaped(&b, v, pathMode)
			}
		}
		to = b.String()
	}
	if !cr.passQuery || rawQuery == "" {
		return to
	}
	// The query goes before a fragment: "/post#ads" → "/post?x=1#ads".
	// Substituted values cannot hold a "#": it was escaped.
	if i := strings.IndexByte(to, '#'); i >= 0 {
		return to[:i] + "?" + rawQuery + to[i:]
	}
	return to + "?" + rawQuery
}

type escapeMode uint8

const (
	pathMode  escapeMode = iota // url.PathEscape per segment, keeping "/"
	queryMode                   // url.QueryEscape
)

// writeEscaped writes s percent-escaped as url.PathEscape (keeping "/") or
// url.QueryEscape would, without their allocations.
func writeEscaped(b *strings.Builder, s string, mode escapeMode) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case mode == pathMode && strings.IndexByte("/$&+:=@", c) >= 0:
			b.WriteByte(c)
		case mode == queryMode && c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}
