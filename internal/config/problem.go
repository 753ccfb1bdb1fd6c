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

// Problems flattens an error returned by Parse, Load or Validate into its
// problems, in file order. Other errors yield nil.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(err error) {
		if p, ok := err.(*Problem); ok { //nolint:errorlint // only a direct Problem counts; Join is walked below
			out = append(out, p)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // walking errors.Join
			for _, e := range j.Unwrap() {
				walk(e)
			}
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
