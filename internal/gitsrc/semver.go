package gitsrc

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/sitehost/sitehost/internal/fault"
)

// ErrInvalidRange is wrapped by errors for a ref that looks like a semver
// range (see IsRange) but does not parse. It is a configuration mistake,
// not a missing ref.
var ErrInvalidRange = fault.Stalled(errors.New("gitsrc: invalid semver range"))

// rangeChars mark a ref as a semver range. None of them can appear in a
// git ref name except '=', and a branch name with '=' or a space in a
// site's ref is not worth the ambiguity.
const rangeChars = "*<>=~^ "

// IsRange reports whether ref is a semver range rather than a branch, tag,
// full ref or commit: it contains '*', '<', '>', '=', '~', '^', a space or
// "||". Such a ref resolves to the newest matching tag (see MatchRange);
// every other ref keeps its plain meaning, so a tag called "1.2.3" is
// looked up by name.
func IsRange(ref string) bool {
	return strings.ContainsAny(ref, rangeChars) || strings.Contains(ref, "||")
}

// MatchRange returns the tag in tags with the highest semver precedence
// that satisfies rng, following npm's range syntax:
//
//	1.*  v1.*  1.x    >=1.0.0 <2.0.0 (x and X work as * too)
//	1.2.*  v1.2.*     >=1.2.0 <1.3.0
//	"*" alone         any release: the newest tag that is not a prerelease
//	=1.2.3  =v1.2.3   exactly 1.2.3; a bare version inside a range means the same
//	>1.0  >=1.2.0  <2  <=v2.3.4
//	                  partial versions follow npm: >1.0 is >=1.1.0, <=1.2 is <1.3.0,
//	                  <1.2 is <1.2.0, >=1 is >=1.0.0
//	~1.2.3  ~1.2      >=1.2.3 <1.3.0, >=1.2.0 <1.3.0 (~1 is >=1.0.0 <2.0.0)
//	^1.2.3            >=1.2.3 <2.0.0; on 0.x the leftmost non-zero part is the
//	                  one kept: ^0.2.3 is <0.3.0, ^0.0.3 is <0.0.4, ^0.2 is <0.3.0
//	1.2 - 2.3         >=1.2.0 <2.4.0 (hyphen range, partial upper bound as <=)
//	A B               both A and B (space-separated comparators AND)
//	A || B            either (OR)
//
// A space between an operator and its version is allowed (">= 1.2").
//
// Tags may be short names or "refs/tags/..." and may or may not start
// with "v"; a tag must be a full semver 2.0 version (three numbers, no
// leading zeros) to be considered, and anything else ("foo", "v1.2",
// "latest") is ignored. Build metadata ("+build.5") is ignored for
// matching and ordering. A prerelease tag such as v1.2.0-rc.1 matches only
// when the same AND-group has a comparator that itself names a prerelease
// on 1.2.0 (npm's rule): ">=1.2.0-rc.0 <1.3.0" admits v1.2.0-rc.1 but not
// v1.2.1-rc.1, and "v1.*" admits no prerelease at all. Tags of equal
// precedence (v1.2.0 and 1.2.0, or different build metadata) are
// tie-broken by the lexically greatest name, so the answer is stable.
//
// It returns the tag as given. A range that does not parse is an error
// wrapping ErrInvalidRange; no matching tag is an error wrapping
// ErrRefNotFound that names the range and up to 5 of the newest semver
// tags seen.
func MatchRange(rng string, tags []string) (string, error) {
	r, err := parseRange(rng)
	if err != nil {
		return "", err
	}
	var (
		best    string
		bestV   version
		found   bool
		newest  []tagVersion
		nonSemv int
	)
	for _, tag := range tags {
		v, ok := parseTag(tag)
		if !ok {
			nonSemv++
			continue
		}
		newest = append(newest, tagVersion{tag, v})
		if !r.match(v) {
			continue
		}
		if !found || v.compare(bestV) > 0 || v.compare(bestV) == 0 && tag > best {
			best, bestV, found = tag, v, true
		}
	}
	if found {
		return best, nil
	}
	if len(newest) == 0 {
		return "", fmt.Errorf("%w: no tag matches range %q: no semver tags among %d tags", ErrRefNotFound, rng, nonSemv)
	}
	slices.SortFunc(newest, func(a, b tagVersion) int {
		if c := b.v.compare(a.v); c != 0 {
			return c
		}
		return strings.Compare(b.tag, a.tag)
	})
	var names []string
	for _, tv := range newest[:min(5, len(newest))] {
		names = append(names, tv.tag)
	}
	return "", fmt.Errorf("%w: no tag matches range %q (newest tags: %s)", ErrRefNotFound, rng, strings.Join(names, ", "))
}

type tagVersion struct {
	tag string
	v   version
}

// version is a full semver version; build metadata is dropped.
type version struct {
	major, minor, patch uint64
	pre                 string // without the '-'
}

func (v version) String() string {
	s := fmt.Sprintf("v%d.%d.%d", v.major, v.minor, v.patch)
	if v.pre != "" {
		s += "-" + v.pre
	}
	return s
}

// compare orders by semver precedence, prereleases included.
func (v version) compare(o version) int {
	return semver.Compare(v.String(), o.String())
}

func (v version) sameCore(o version) bool {
	return v.major == o.major && v.minor == o.minor && v.patch == o.patch
}

// parseTag accepts a tag that is a full semver version, with an optional
// "refs/tags/" and "v" prefix.
func parseTag(tag string) (version, bool) {
	s := strings.TrimPrefix(strings.TrimPrefix(tag, "refs/tags/"), "v")
	p, err := parsePartial(s)
	if err != nil || len(p.nums) != 3 || p.wild {
		return version{}, false
	}
	return p.version(), true
}

// partial is a version as written in a range: 0 to 3 numbers, then
// wildcards or nothing.
type partial struct {
	nums []uint64
	wild bool   // an explicit *, x or X was written
	pre  string // only with 3 numbers
}

func (p partial) version() version {
	var n [3]uint64
	copy(n[:], p.nums)
	return version{major: n[0], minor: n[1], patch: n[2], pre: p.pre}
}

// parsePartial parses "1", "1.2", "1.2.3-rc.1+build", "1.*", "*", "1.x.x"
// (without the leading "v").
func parsePartial(s string) (partial, error) {
	var p partial
	if s == "" {
		return p, errors.New("empty version")
	}
	core, build, hasBuild := strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	elems := strings.Split(core, ".")
	if len(elems) > 3 {
		return p, fmt.Errorf("version %q has more than three parts", s)
	}
	for _, e := range elems {
		switch {
		case e == "*" || e == "x" || e == "X":
			p.wild = true
		case p.wild:
			return p, fmt.Errorf("version %q has a number after a wildcard", s)
		case e == "" || strings.Trim(e, "0123456789") != "":
			return p, fmt.Errorf("version %q: %q is not a number", s, e)
		case len(e) > 1 && e[0] == '0':
			return p, fmt.Errorf("version %q: %q has a leading zero", s, e)
		default:
			n, err := strconv.ParseUint(e, 10, 64)
			if err != nil || n == math.MaxUint64 {
				return p, fmt.Errorf("version %q: %q is too large", s, e)
			}
			p.nums = append(p.nums, n)
		}
	}
	if hasPre {
		if len(p.nums) != 3 {
			return p, fmt.Errorf("version %q: a prerelease needs major.minor.patch", s)
		}
		if !semver.IsValid("v0.0.0-" + pre) {
			return p, fmt.Errorf("version %q: invalid prerelease %q", s, pre)
		}
		p.pre = pre
	}
	if hasBuild && !semver.IsValid("v0.0.0+"+build) {
		return p, fmt.Errorf("version %q: invalid build metadata %q", s, build)
	}
	return p, nil
}

// comparator is one "op version" test; op is one of < <= > >= =.
type comparator struct {
	op string
	v  version
}

func (c comparator) match(v version) bool {
	d := v.compare(c.v)
	switch c.op {
	case "<":
		return d < 0
	case "<=":
		return d <= 0
	case ">":
		return d > 0
	case ">=":
		return d >= 0
	default:
		return d == 0
	}
}

// semverRange is an OR of AND-groups; an empty group matches any release.
type semverRange [][]comparator

func (r semverRange) match(v version) bool {
	for _, group := range r {
		if groupMatch(group, v) {
			return true
		}
	}
	return false
}

func groupMatch(group []comparator, v version) bool {
	for _, c := range group {
		if !c.match(v) {
			return false
		}
	}
	if v.pre == "" {
		return true
	}
	// npm: a prerelease only matches a group that names a prerelease on
	// the same major.minor.patch. Desugared bounds never carry one.
	for _, c := range group {
		if c.v.pre != "" && c.v.sameCore(v) {
			return true
		}
	}
	return false
}

// rangeOps are the comparator prefixes, longest first.
var rangeOps = []string{">=", "<=", ">", "<", "=", "~", "^"}

func parseRange(rng string) (semverRange, error) {
	var r semverRange
	for alt := range strings.SplitSeq(rng, "||") {
		group, err := parseGroup(alt)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrInvalidRange, rng, err)
		}
		r = append(r, group)
	}
	return r, nil
}

// parseGroup parses space-separated comparators, joining an operator
// written apart from its version and expanding hyphen ranges.
func parseGroup(s string) ([]comparator, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("empty alternative")
	}
	var toks []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if slices.Contains(rangeOps, f) {
			if i+1 == len(fields) {
				return nil, fmt.Errorf("operator %q without a version", f)
			}
			i++
			f += fields[i]
		}
		toks = append(toks, f)
	}
	group := []comparator{}
	for i := 0; i < len(toks); i++ {
		if i+2 < len(toks) && toks[i+1] == "-" {
			lo, err := desugar(">=", toks[i])
			if err != nil {
				return nil, err
			}
			hi, err := desugar("<=", toks[i+2])
			if err != nil {
				return nil, err
			}
			group = append(append(group, lo...), hi...)
			i += 2
			continue
		}
		op, ver := "", toks[i]
		for _, o := range rangeOps {
			if rest, ok := strings.CutPrefix(ver, o); ok {
				op, ver = o, rest
				break
			}
		}
		cs, err := desugar(op, ver)
		if err != nil {
			return nil, err
		}
		group = append(group, cs...)
	}
	return group, nil
}

// none matches no version: nothing is below 0.0.0 and a 0.0.0 prerelease
// is not admitted by a comparator without a prerelease.
var none = []comparator{{"<", version{}}}

// desugar turns "op partial-version" into plain comparators.
func desugar(op, s string) ([]comparator, error) {
	if op == "" {
		op = "=" // a bare version in a range means exactly that version
	}
	p, err := parsePartial(strings.TrimPrefix(s, "v"))
	if err != nil {
		return nil, err
	}
	n, lo := len(p.nums), p.version()
	// next is the smallest version above every version p stands for.
	var next version
	switch n {
	case 1:
		next = version{major: lo.major + 1}
	case 2:
		next = version{major: lo.major, minor: lo.minor + 1}
	}
	switch op {
	case "=":
		switch n {
		case 0:
			return nil, nil
		case 3:
			return []comparator{{"=", lo}}, nil
		}
		return []comparator{{">=", lo}, {"<", next}}, nil
	case ">":
		switch n {
		case 0:
			return none, nil
		case 3:
			return []comparator{{">", lo}}, nil
		}
		return []comparator{{">=", next}}, nil
	case ">=":
		if n == 0 {
			return nil, nil
		}
		return []comparator{{">=", lo}}, nil
	case "<":
		if n == 0 {
			return none, nil
		}
		return []comparator{{"<", lo}}, nil
	case "<=":
		switch n {
		case 0:
			return nil, nil
		case 3:
			return []comparator{{"<=", lo}}, nil
		}
		return []comparator{{"<", next}}, nil
	case "~":
		switch n {
		case 0:
			return nil, nil
		case 1:
			return []comparator{{">=", lo}, {"<", next}}, nil
		}
		return []comparator{{">=", lo}, {"<", version{major: lo.major, minor: lo.minor + 1}}}, nil
	case "^":
		switch {
		case n == 0:
			return nil, nil
		case lo.major > 0 || n == 1:
			return []comparator{{">=", lo}, {"<", version{major: lo.major + 1}}}, nil
		case lo.minor > 0 || n == 2:
			return []comparator{{">=", lo}, {"<", version{minor: lo.minor + 1}}}, nil
		default:
			return []comparator{{">=", lo}, {"<", version{patch: lo.patch + 1}}}, nil
		}
	}
	return nil, fmt.Errorf("unknown operator %q", op)
}
