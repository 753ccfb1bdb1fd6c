package rules

import (
	"fmt"
	"strings"
)

const (
	// maxRules bounds the rules taken from one file: past it, the rest of
	// the file is ignored (with one error), so a hostile deploy cannot make
	// the index arbitrarily large.
	maxRules = 100_000
	// maxErrors bounds the errors reported for one file: a megabyte of
	// garbage would otherwise produce millions of them.
	maxErrors = 1000
)

// Parse parses a deploy's rules. redirects and headers are the contents of
// _redirects and _headers in the publish dir (nil: absent), toml of
// netlify.toml (nil: absent). Order: _redirects rules then netlify.toml
// redirects; _headers rules then netlify.toml headers. Never fails: problems
// are in Set.Errors, each naming the file and line; a bad rule is left out.
func Parse(redirects, headers, toml []byte) Set {
	var s Set
	if redirects != nil {
		rs, errs := ParseRedirects(redirects)
		s.Redirects = append(s.Redirects, rs...)
		s.Errors = append(s.Errors, errs...)
	}
	if headers != nil {
		hs, errs := ParseHeaders(headers)
		s.Headers = append(s.Headers, hs...)
		s.Errors = append(s.Errors, errs...)
	}
	if toml != nil {
		rs, hs, errs := ParseNetlifyTOML(toml)
		s.Redirects = append(s.Redirects, rs...)
		s.Headers = append(s.Headers, hs...)
		s.Errors = append(s.Errors, errs...)
	}
	return s
}

// errorList collects one file's errors, up to maxErrors.
type errorList struct {
	file string
	errs []Error
}

func (l *errorList) add(line int, format string, args ...any) {
	switch {
	case len(l.errs) < maxErrors:
		l.errs = append(l.errs, Error{File: l.file, Line: line, Message: fmt.Sprintf(format, args...)})
	case len(l.errs) == maxErrors:
		l.errs = append(l.errs, Error{File: l.file, Line: line, Message: fmt.Sprintf("more than %d errors; the rest are not reported", maxErrors)})
	}
}

// tooLarge reports whether data is over MaxFileSize, as the file's only
// error.
func tooLarge(file string, data []byte) ([]Error, bool) {
	if len(data) <= MaxFileSize {
		return nil, false
	}
	return []Error{{File: file, Message: fmt.Sprintf("file is %d bytes, over the %d-byte limit; none of its rules apply", len(data), MaxFileSize)}}, true
}

// lines calls fn with each line of s and its 1-based number; fn returns
// false to stop. Lines end at "\n" only, as upstream splits them; a
// trailing "\r" is whitespace and trimmed by the callers.
func lines(s string, fn func(n int, line string) bool) {
	for n := 1; ; n++ {
		line, rest, more := strings.Cut(s, "\n")
		if !fn(n, line) || !more {
			return
		}
		s = rest
	}
}

// isJSSpace reports whether r is whitespace for JavaScript's trim() and
// \s, which is what upstream trims and splits lines with.
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

func trimJS(s string) string { return strings.TrimFunc(s, isJSSpace) }

// isURL reports whether s is an absolute http(s) URL, the only kind of URL
// upstream recognises in from and to.
func isURL(s string) bool {
	return hasPrefixFold(s, "http://") || hasPrefixFold(s, "https://")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
