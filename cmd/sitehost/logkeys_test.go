package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// keyChecker is a slog.Handler that notes every record, of any level, in
// which a key appears twice (counting the attrs of With and the groups of
// WithGroup), and passes the records its inner handler wants on to it.
// One of each key per line is what lets a JSON log line be read without
// guessing which "component" was meant.
type keyChecker struct {
	inner  slog.Handler
	prefix string      // the open groups, each followed by "."
	attrs  []slog.Attr // the With attrs so far, by full key
	found  *repeats
}

type repeats struct {
	mu    sync.Mutex
	lines []string
}

func newKeyChecker(inner slog.Handler) *keyChecker {
	return &keyChecker{inner: inner, found: &repeats{}}
}

// repeated returns one entry per record that repeated a key, as
// `"message": key=v1 key=v2`.
func (h *keyChecker) repeated() []string {
	h.found.mu.Lock()
	defer h.found.mu.Unlock()
	return slices.Clone(h.found.lines)
}

func (h *keyChecker) Enabled(context.Context, slog.Level) bool { return true }

func (h *keyChecker) Handle(ctx context.Context, r slog.Record) error {
	all := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		all = flatten(all, h.prefix, a)
		return true
	})
	count := map[string]int{}
	for _, a := range all {
		count[a.Key]++
	}
	var dups []string
	for _, a := range all {
		if count[a.Key] > 1 {
			dups = append(dups, a.String())
		}
	}
	if len(dups) > 0 {
		h.found.mu.Lock()
		h.found.lines = append(h.found.lines, fmt.Sprintf("%q: %s", r.Message, strings.Join(dups, " ")))
		h.found.mu.Unlock()
	}
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *keyChecker) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	c.attrs = slices.Clone(h.attrs)
	for _, a := range attrs {
		c.attrs = flatten(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *keyChecker) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

// flatten appends a, or its members for a group, under their full keys,
// as a handler would print them.
func flatten(out []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() != slog.KindGroup {
		if a.Key == "" {
			return out // slog drops an empty attr
		}
		return append(out, slog.Attr{Key: prefix + a.Key, Value: v})
	}
	if a.Key != "" {
		prefix += a.Key + "."
	}
	for _, m := range v.Group() {
		out = flatten(out, prefix, m)
	}
	return out
}

func TestKeyChecker(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(l *slog.Logger)
		want []string
	}{
		{"distinct", func(l *slog.Logger) { l.With("component", "a").Info("m", "site", "s") }, nil},
		{"With then With", func(l *slog.Logger) { l.With("component", "a").With("component", "b").Info("m") },
			[]string{`"m": component=a component=b`}},
		{"With then call", func(l *slog.Logger) { l.With("site", "a").Debug("m", "site", "b") },
			[]string{`"m": site=a site=b`}},
		{"in one call", func(l *slog.Logger) { l.Warn("m", "k", 1, "k", 2) }, []string{`"m": k=1 k=2`}},
		{"groups apart", func(l *slog.Logger) { l.With("k", 1).WithGroup("g").Info("m", "k", 2, slog.Group("h", "k", 3)) }, nil},
		{"inline group", func(l *slog.Logger) { l.With("k", 1).Info("m", slog.Group("", "k", 2)) }, []string{`"m": k=1 k=2`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := newKeyChecker(slog.DiscardHandler)
			tc.log(slog.New(kc))
			if got := kc.repeated(); !slices.Equal(got, tc.want) {
				t.Errorf("repeated = %q, want %q", got, tc.want)
			}
		})
	}
}
