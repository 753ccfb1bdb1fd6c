package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes, written in sites.yaml as a plain number of
// bytes or with a unit: KiB, MiB, GiB, TiB (powers of 1024); K, M, G, T
// (also powers of 1024, as docker's --memory reads them); KB, MB, GB, TB
// (powers of 1000). Units are case-insensitive.
type ByteSize int64

// The binary units.
const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

var byteSizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// ParseByteSize parses a size such as "512MiB", "2G" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	m := byteSizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("bad size %q: want a number with an optional unit, such as 512MiB or 1GiB", s)
	}
	mult, ok := byteUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("bad size %q: unknown unit %q (use KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, m[2])
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q: %w", s, err)
	}
	v := math.Round(n * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return ByteSize(v), nil
}

// String formats b in the largest binary unit that divides it exactly.
func (b ByteSize) String() string {
	for _, u := range []struct {
		size ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
