// Package units formats quantities for people, one way everywhere: the
// build log, the dashboard and the CLI agree.
package units

import "strconv"

// Bytes formats a size in SI units ("12.3 MB"), as file managers do.
func Bytes(n int64) string {
	if n < 1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB"} {
		f /= 1000
		if f < 1000 || unit == "TB" {
			return strconv.FormatFloat(f, 'f', 1, 64) + " " + unit
		}
	}
	return "" // not reached
}
