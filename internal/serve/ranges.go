package serve

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// maxRanges is the most byte ranges one request may ask for; past it the
// whole file is sent. RFC 9110 §14.2 lets a server ignore Range, and nginx
// does the same past max_ranges. http.ServeContent takes any count, so
// 1000 one-byte ranges would get a multipart answer many times the file.
const maxRanges = 16

// rangesAllowed reports whether a Range header may be honoured for a body
// of size bytes: at most maxRanges ranges, none overlapping another. A
// header it cannot parse is left to http.ServeContent, which answers it
// as RFC 9110 says (416, or the whole body).
func rangesAllowed(h string, size int64) bool {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return true
	}
	type span struct{ start, end int64 } // end exclusive
	var spans []span
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if len(spans) == maxRanges {
			return false
		}
		first, last, ok := strings.Cut(part, "-")
		if !ok {
			return true
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var s span
		if first == "" {
			// A suffix: the last n bytes.
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil {
				return true
			}
			s = span{max(size-n, 0), size}
		} else {
			start, err := strconv.ParseInt(first, 10, 64)
			if err != nil {
				return true
			}
			end := size
			if last != "" {
				e, err := strconv.ParseInt(last, 10, 64)
				if err != nil {
					return true
				}
				end = min(e+1, size)
			}
			if start >= size {
				continue // unsatisfiable: ServeContent leaves it out
			}
			s = span{start, end}
		}
		spans = append(spans, s)
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return false
		}
	}
	return true
}
