// Package redact masks secrets in URLs and text before they reach a log,
// an API answer or a page: credentials in URLs, and the values of query
// parameters that carry tokens.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces a secret.
const Mask = "***"

var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@`)

// Credentials masks the user information of every URL in s
// ("https://user:token@host/…" → "https://***@host/…").
func Credentials(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userinfo.ReplaceAllString(s, "${1}"+Mask+"@")
}

// secretParams are query parameter names (lowercase, '-' as '_') whose
// values are credentials: OAuth, API keys, signed URLs, sessions.
var secretParams = map[string]bool{
	"token": true, "access_token": true, "refresh_token": true, "id_token": true, "private_token": true,
	"auth": true, "authorization": true, "key": true, "api_key": true, "apikey": true,
	"secret": true, "client_secret": true, "password": true, "passwd": true, "pass": true, "pwd": true,
	"signature": true, "sig": true, "code": true, "session": true, "sessionid": true, "jwt": true,
	"x_amz_signature": true, "x_amz_credential": true, "x_amz_security_token": true,
	"x_goog_signature": true, "x_goog_credential": true,
}

func secretParam(name string) bool {
	if !needsFolding(name) {
		return secretName(name)
	}
	return secretName(strings.ToLower(strings.ReplaceAll(name, "-", "_")))
}

// needsFolding: the name has upper case or '-' (rare; folding allocates).
func needsFolding(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '-' || 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

func secretName(name string) bool {
	if secretParams[name] {
		return true
	}
	// camelCase folded to lowercase (accessToken → accesstoken) and
	// snake_case alike: a name ending in one of these is a credential.
	for _, suffix := range []string{"token", "secret", "password", "apikey", "api_key", "_key", "signature"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// Query masks the values of secret parameters in a raw query string,
// keeping its order and everything else as it was. A query without
// secrets is returned as it is, without allocating: this runs on every
// logged request.
func Query(raw string) string {
	if !hasSecret(raw) {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	rest := raw
	for first := true; ; first = false {
		part, more, found := strings.Cut(rest, "&")
		if !first {
			b.WriteByte('&')
		}
		name, _, hasValue := strings.Cut(part, "=")
		if hasValue && secretParam(unescape(name)) {
			b.WriteString(name)
			b.WriteString("=" + Mask)
		} else {
			b.WriteString(part)
		}
		if !found {
			return b.String()
		}
		rest = more
	}
}

// hasSecret reports whether any parameter of raw is a secret one.
func hasSecret(raw string) bool {
	for rest := raw; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if name, _, ok := strings.Cut(part, "="); ok && secretParam(unescape(name)) {
			return true
		}
	}
	return false
}

// unescape decodes the few escapes a parameter name may use, enough to
// recognise one; a malformed name is returned as it is.
func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	s = strings.ReplaceAll(s, "+", " ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, ok := hexByte(s[i+1], s[i+2]); ok {
				b.WriteByte(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hexByte(a, b byte) (byte, bool) {
	x, ok1 := hexVal(a)
	y, ok2 := hexVal(b)
	return x<<4 | y, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// URI is a request's path and query safe to log.
func URI(path, rawQuery string) string {
	if rawQuery == "" {
		return path
	}
	return path + "?" + Query(rawQuery)
}
