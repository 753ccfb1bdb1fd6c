package fault_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/sitehost/sitehost/internal/fault"
)

// templateError is a failure of one kind by nature.
type templateError struct{}

func (templateError) Error() string         { return "template error" }
func (templateError) FaultKind() fault.Kind { return fault.KindStalled }

func TestKindOf(t *testing.T) {
	sentinel := fault.Stalled(errors.New("ref not found"))
	tests := []struct {
		name string
		err  error
		want fault.Kind
	}{
		{"nil", nil, ""},
		{"unmarked", errors.New("connection refused"), fault.KindTransient},
		{"context", context.DeadlineExceeded, fault.KindTransient},
		{"stalled", fault.Stalled(errors.New("no such path")), fault.KindStalled},
		{"transient", fault.Transient(errors.New("503")), fault.KindTransient},
		{"superseded", fault.Superseded(errors.New("newer commit")), fault.KindSuperseded},
		{"wrapped with %w", fmt.Errorf("resolving main: %w", sentinel), fault.KindStalled},
		{"wrapped twice", fmt.Errorf("deploy: %w", fmt.Errorf("resolving main: %w", sentinel)), fault.KindStalled},
		{"wrapped with %v loses the kind", fmt.Errorf("resolving main: %v", sentinel), fault.KindTransient}, //nolint:errorlint // the point: %v drops the chain
		{"outermost wins", fault.Transient(fmt.Errorf("retrying: %w", sentinel)), fault.KindTransient},
		{"typed error", fmt.Errorf("build: %w", templateError{}), fault.KindStalled},
		{"joined", errors.Join(errors.New("a"), fault.Superseded(errors.New("b"))), fault.KindSuperseded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestMarkKeepsTheCause: a mark changes neither the text nor what
// errors.Is and errors.As find.
func TestMarkKeepsTheCause(t *testing.T) {
	cause := &fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}
	for _, mark := range []func(error) error{fault.Stalled, fault.Transient, fault.Superseded} {
		err := fmt.Errorf("reading: %w", mark(cause))
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || err.Error() != "reading: "+cause.Error() {
			t.Errorf("%v: the cause is lost", err)
		}
		if mark(nil) != nil {
			t.Error("marking nil is not nil")
		}
	}
}
