package site

import "strings"

// Hostname is h as sitehost compares host names, everywhere: lowercased,
// without surrounding space and without the trailing dot of a fully
// qualified name. A port, if any, stays (config refuses one in a domain;
// a request's Host loses it first, serve.NormalizeHost).
func Hostname(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}
