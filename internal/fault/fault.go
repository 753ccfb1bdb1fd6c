// Package fault says what to do about a failed deploy: wait for a new
// commit, retry, or nothing (a newer commit took over). The package that
// sees a failure start marks its error with a Kind; the reconcile loop
// reads it once, with KindOf, where it decides.
package fault

import "errors"

// Kind is what a failure asks for. Its value is what the API and the
// journal show.
type Kind string

// The kinds of failure.
const (
	// KindTransient: the cause is outside the site (network, storage);
	// retry with backoff. Errors nobody marked are transient.
	KindTransient Kind = "transient"
	// KindStalled: the site's own content or settings are wrong (a
	// template error, a missing path or ref, a tree too large, rule
	// errors under rules.strict); retrying the same commit fails the same
	// way, so wait for a new one.
	KindStalled Kind = "stalled"
	// KindSuperseded: a newer commit replaced this one before it went
	// live; the queued request builds that one.
	KindSuperseded Kind = "superseded"
)

// Stalled marks err as the site's to fix. Stalled(nil) is nil.
func Stalled(err error) error { return mark(KindStalled, err) }

// Transient marks err as worth a retry, overriding a kind deeper in its
// chain. Transient(nil) is nil.
func Transient(err error) error { return mark(KindTransient, err) }

// Superseded marks err as a deploy a newer commit replaced.
// Superseded(nil) is nil.
func Superseded(err error) error { return mark(KindSuperseded, err) }

// Classified is an error that knows its kind, for error types that are
// failures of one kind by nature (a build's template errors).
type Classified interface {
	error
	FaultKind() Kind
}

// KindOf is the kind of the outermost marked error in err's chain;
// KindTransient when none is marked, "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var c Classified
	if errors.As(err, &c) {
		return c.FaultKind()
	}
	return KindTransient
}

func mark(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &marked{kind: k, err: err}
}

// marked carries a kind; its text and chain are the wrapped error's.
type marked struct {
	kind Kind
	err  error
}

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() error   { return m.err }
func (m *marked) FaultKind() Kind { return m.kind }
