// Package backoff computes the waits between retries: a delay that
// doubles per attempt up to a cap, spread by jitter so that many callers
// failing on one outage do not retry in lockstep.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Exponential is a retry schedule. The zero Jitter gives exact delays;
// the value is safe for concurrent use when Rand is.
type Exponential struct {
	Base time.Duration // delay after the first failed attempt
	Max  time.Duration // no delay is longer, jitter included; 0: no cap
	// Jitter spreads the doubled delay d uniformly over
	// [d - d×Below, d + d×Above] (before Max applies).
	Jitter Jitter
	// Rand returns a value in [0, n); nil means math/rand/v2's Int64N.
	// Tests inject one to make delays deterministic.
	Rand func(n int64) int64
}

// Jitter is the spread around a delay, as fractions of it.
type Jitter struct {
	Below, Above float64
}

// Delay returns the wait after failed attempt n (1-based; n < 1 counts
// as 1): Base doubled n-1 times, capped at Max, jittered, capped again.
func (e Exponential) Delay(n int) time.Duration {
	d := e.Base
	if d <= 0 {
		return 0
	}
	for i := 1; i < n && (e.Max <= 0 || d < e.Max) && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	if e.Max > 0 {
		d = min(d, e.Max)
	}
	lo := d - scale(d, e.Jitter.Below)
	hi := d + scale(d, e.Jitter.Above)
	if hi < d { // overflowed
		hi = math.MaxInt64
	}
	lo = max(lo, 0)
	if hi > lo {
		rnd := e.Rand
		if rnd == nil {
			rnd = rand.Int64N
		}
		span := int64(hi - lo)
		if span < math.MaxInt64 {
			span++ // hi included
		}
		d = lo + time.Duration(rnd(span))
	} else {
		d = lo
	}
	if e.Max > 0 {
		d = min(d, e.Max)
	}
	return d
}

// scale returns d×f, for f ≥ 0; negative fractions count as 0.
func scale(d time.Duration, f float64) time.Duration {
	if f <= 0 {
		return 0
	}
	v := float64(d) * f
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(v)
}
