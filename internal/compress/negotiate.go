package compress

import "strings"

// qMax is q=1. Weights are kept in thousandths, the precision RFC 9110 allows,
// so parsing needs neither floats nor allocations.
const qMax = 1000

// qUnlisted marks a coding the header does not mention.
const qUnlisted = -1

// Negotiate picks the encoding to send for an Accept-Encoding header value,
// given which variants exist.
//
// It follows RFC 9110 §12.5.3: a coding's weight is its own q if listed, else
// the q of "*" if present, else 0 (not acceptable); "x-gzip" counts as gzip.
// Among the available codings with the highest weight it prefers
// br > gzip > identity, since smaller bytes win when the client is
// indifferent. Identity is the fallback whenever nothing else fits, even if
// the client refused it ("identity;q=0", "*;q=0"): for a static site an
// uncompressed 200 is more useful than a 406.
//
// Parsing is case-insensitive and forgiving: empty elements, stray
// whitespace and unknown parameters are skipped, and a coding whose q-value
// is malformed is treated as refused, so junk never makes the server send a
// coding the client did not clearly ask for. An empty header yields Identity.
//
// Negotiate does not allocate; it runs on every request.
func Negotiate(acceptEncoding string, haveBrotli, haveGzip bool) Encoding {
	if !haveBrotli && !haveGzip {
		return Identity
	}
	qBr, qGzip, qIdentity, qStar := qUnlisted, qUnlisted, qUnlisted, qUnlisted
	for rest := acceptEncoding; rest != ""; {
		var elem string
		elem, rest, _ = strings.Cut(rest, ",")
		coding, params, _ := strings.Cut(elem, ";")
		coding = strings.TrimSpace(coding)
		var q *int
		switch {
		case strings.EqualFold(coding, "br"):
			q = &qBr
		case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
			q = &qGzip
		case strings.EqualFold(coding, "identity"):
			q = &qIdentity
		case coding == "*":
			q = &qStar
		default:
			// deflate, zstd, compress, junk: we have no such variant, and
			// listing them does not change what "*" covers for ours.
			continue
		}
		w := weight(params)
		// A coding listed twice keeps its lowest weight: if any mention
		// refuses it, it is refused.
		if *q == qUnlisted || w < *q {
			*q = w
		}
	}

	br, gz := 0, 0
	if haveBrotli {
		br = resolve(qBr, qStar, 0)
	}
	if haveGzip {
		gz = resolve(qGzip, qStar, 0)
	}
	// Identity is acceptable by default, but an unlisted identity ranks below
	// every coding the client did list, so "gzip;q=0.5" still gets gzip.
	id := resolve(qIdentity, qStar, 1)

	switch {
	case br > 0 && br >= gz && br >= id:
		return Brotli
	case gz > 0 && gz >= id:
		return Gzip
	}
	return Identity
}

// resolve applies the RFC 9110 fallback chain: own weight, then "*", then def.
func resolve(own, star, def int) int {
	if own != qUnlisted {
		return own
	}
	if star != qUnlisted {
		return star
	}
	return def
}

// weight returns the q parameter of one Accept-Encoding element in
// thousandths: qMax when absent, 0 when malformed.
func weight(params string) int {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, ok := parseQ(strings.TrimSpace(value))
		if !ok {
			return 0
		}
		return q
	}
	return qMax
}

// parseQ parses an RFC 9110 qvalue ("0", "0.5", "1", "1.000") into
// thousandths. It tolerates more than three decimals (they are truncated)
// and rejects anything above 1, signs, quotes and exponents.
func parseQ(s string) (int, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := int(s[0]-'0') * qMax
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := qMax / 10
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > qMax {
		return 0, false
	}
	return q, true
}
