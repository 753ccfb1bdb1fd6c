package rules

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type globKind uint8

const (
	globLit      globKind = iota // literal text, case-insensitive
	globOptSlash                 // \/?
	globStar                     // (.*): any run without a line terminator
	globSeg                      // ([^/]+)
)

type globTok struct {
	kind globKind
	lit  []rune // globLit: folded runes
}

// globMatch reports whether the whole of path matches prog (which ends
// with an optional slash). It backtracks, and remembers failed (token,
// offset) pairs, so that no pattern takes more than tokens × path length
// steps. buf holds that memo when it is big enough.
func globMatch(prog []globTok, path string, buf []uint64) bool {
	n := (len(prog)*(len(path)+1) + 63) / 64
	var failed []uint64
	if n <= len(buf) {
		failed = buf[:n]
		clear(failed)
	} else {
		failed = make([]uint64, n)
	}
	return globAt(prog, path, failed, 0, 0)
}

// globAt matches prog[ti:] against path[pos:]. (Plain arguments rather
// than a struct keep the memo on the caller's stack.)
func globAt(prog []globTok, path string, failed []uint64, ti, pos int) bool {
	if ti == len(prog) {
		return pos == len(path)
	}
	bit := ti*(len(path)+1) + pos
	if failed[bit/64]&(1<<(bit%64)) != 0 {
		return false
	}
	if globStep(prog, path, failed, ti, pos) {
		return true
	}
	failed[bit/64] |= 1 << (bit % 64)
	return false
}

func globStep(prog []globTok, path string, failed []uint64, ti, pos int) bool {
	switch t := &prog[ti]; t.kind {
	case globLit:
		end, ok := matchFolded(path, pos, t.lit)
		return ok && globAt(prog, path, failed, ti+1, end)
	case globOptSlash:
		if pos < len(path) && path[pos] == '/' && globAt(prog, path, failed, ti+1, pos+1) {
			return true
		}
		return globAt(prog, path, failed, ti+1, pos)
	case globStar:
		if ti == len(prog)-2 { // a final "*": only a line terminator stops it
			return !strings.ContainsAny(path[pos:], "\n\r\u2028\u2029")
		}
		for end := pos; ; {
			if globAt(prog, path, failed, ti+1, end) {
				return true
			}
			if end == len(path) {
				return false
			}
			r, w := utf8.DecodeRuneInString(path[end:])
			if r == '\n' || r == '\r' || r == 0x2028 || r == 0x2029 {
				return false // JavaScript's "." stops at line terminators
			}
			end += w
		}
	case globSeg:
		for end := pos; end < len(path); {
			r, w := utf8.DecodeRuneInString(path[end:])
			if r == '/' {
				return false
			}
			end += w
			if globAt(prog, path, failed, ti+1, end) {
				return true
			}
		}
	}
	return false
}

// matchFolded matches lit (folded runes) at path[pos:], case-insensitively,
// and returns where the match ends.
func matchFolded(path string, pos int, lit []rune) (int, bool) {
	for _, want := range lit {
		if pos >= len(path) {
			return 0, false
		}
		c := path[pos]
		if c < utf8.RuneSelf {
			if rune(foldASCII(c)) != want {
				return 0, false
			}
			pos++
			continue
		}
		r, w := utf8.DecodeRuneInString(path[pos:])
		if foldRune(r) != want {
			return 0, false
		}
		pos += w
	}
	return pos, true
}

// foldRune maps r to a canonical member of its case-folding orbit (the
// smallest), so two strings are equal under Unicode simple folding, as
// JavaScript's "iu" regexps and Go's (?i) compare them, exactly when
// their folds are equal.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(foldASCII(byte(r)))
	}
	lo := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		lo = min(lo, f)
	}
	return lo
}

// foldASCII is foldRune for ASCII: every ASCII letter's orbit holds its
// upper case, the smallest member ("k" has the Kelvin sign too).
func foldASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// appendFold appends the folded form of s to b.
func appendFold(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, foldASCII(c))
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, foldRune(r))
		i += w
	}
	return b
}

func appendFoldRunes(rs []rune, s string) []rune {
	for _, r := range s {
		rs = append(rs, foldRune(r))
	}
	return rs
}
