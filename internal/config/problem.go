package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Sentinels wrapped by every Problem, so callers and tests can match the
// kind of problem with errors.Is.
var (
	ErrUnknownKey      = errors.New("config: unknown key")
	ErrDuplicateSite   = errors.New("config: duplicate site")
	ErrDuplicateDomain = errors.New("config: duplicate domain")
	ErrBadName         = errors.New("config: bad site name")
	ErrMissing         = errors.New("config: missing value")
	ErrBadValue        = errors.New("config: bad value")
	// ErrUnusable: the value is well formed but cannot be used here (a key
	// file that cannot be read, forge settings that cannot work with the
	// repository's URL): found by the checks that run where the config is
	// applied, which validate runs too.
	ErrUnusable = errors.New("config: cannot be used")
)

// Problem is one thing wrong with a config file. Its text is
// "<file>:<line>: <key>: <msg>"; parts that are unknown are left out.
type Problem struct {
	File string
	Line int    // 1-based; 0 when unknown
	Key  string // key path such as "sites[1].name"; "" for the whole file
	Msg  string
	Err  error // one of the sentinels
	// cause is an underlying error (site.ErrBadName, say) kept matchable.
	cause error
}

func (p *Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Unwrap returns the sentinel and, if any, the underlying cause.
func (p *Problem) Unwrap() []error {
	var errs []error
	for _, e := range []error{p.Err, p.cause} {
		if e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

// Problems flattens an error returned by Parse, Load or Validate, or one
// wrapping it, into its problems, in file order. Other errors yield nil.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(err error) {
		if p, ok := err.(*Problem); ok { //nolint:errorlint // only a direct Problem counts; Join is walked below
			out = append(out, p)
			return
		}
		switch j := err.(type) { //nolint:errorlint // walking the tree by hand
		case interface{ Unwrap() []error }:
			for _, e := range j.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(j.Unwrap()) // a Problem's Join wrapped with context
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// joinSorted joins problems ordered by line, keeping discovery order for
// problems on the same line.
func joinSorted(probs []*Problem) error {
	if len(probs) == 0 {
		return nil
	}
	slices.SortStableFunc(probs, func(a, b *Problem) int { return a.Line - b.Line })
	errs := make([]error, len(probs))
	for i, p := range probs {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// Problem makes a problem at key (such as "sites[1].forge") of c, with the
// file and line of that key, for checks made outside this package. cause
// stays matchable with errors.Is.
func (c *Config) Problem(key string, sentinel, cause error, format string, args ...any) *Problem {
	v := &checker{c: c}
	return &Problem{File: c.File, Line: v.line(key), Key: key, Msg: fmt.Sprintf(format, args...), Err: sentinel, cause: cause}
}

// JoinProblems joins problems as Parse does: ordered by line, each one
// reported by Problems.
func JoinProblems(probs []*Problem) error { return joinSorted(probs) }
