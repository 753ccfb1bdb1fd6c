package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/backoff"
)

func TestDelay(t *testing.T) {
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	var (
		reconcile = backoff.Exponential{Base: 2 * time.Second, Max: 5 * time.Minute, Jitter: backoff.Jitter{Below: 0.5}}
		notify    = backoff.Exponential{Base: time.Second, Max: 5 * time.Minute, Jitter: backoff.Jitter{Below: 0.5, Above: 0.5}}
		forge     = backoff.Exponential{Base: time.Second, Max: 30 * time.Second, Jitter: backoff.Jitter{Above: 0.25}}
		plain     = backoff.Exponential{Base: 250 * time.Millisecond}
	)
	with := func(e backoff.Exponential, r func(int64) int64) backoff.Exponential { e.Rand = r; return e }
	tests := []struct {
		name    string
		e       backoff.Exponential
		attempt int
		want    time.Duration
	}{
		{"no jitter, first", plain, 1, 250 * time.Millisecond},
		{"no jitter, doubles", plain, 3, time.Second},
		{"attempt below 1 is the first", plain, 0, 250 * time.Millisecond},
		{"zero base", backoff.Exponential{Max: time.Minute}, 5, 0},
		{"below: lowest", with(reconcile, lowest), 1, time.Second},
		{"below: highest", with(reconcile, highest), 1, 2 * time.Second},
		{"below: capped then jittered", with(reconcile, lowest), 20, 150 * time.Second},
		{"below: capped, highest", with(reconcile, highest), 20, 5 * time.Minute},
		{"both: lowest", with(notify, lowest), 3, 2 * time.Second},
		{"both: highest", with(notify, highest), 3, 6 * time.Second},
		{"both: never above max", with(notify, highest), 20, 5 * time.Minute},
		{"above: lowest", with(forge, lowest), 5, 16 * time.Second},
		{"above: highest", with(forge, highest), 5, 20 * time.Second},
		{"above: capped", with(forge, highest), 6, 30 * time.Second},
		{"above: capped, far", with(forge, highest), 60, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Delay(tt.attempt); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

// TestDelayNoOverflow: without Max, doubling stops before it overflows.
func TestDelayNoOverflow(t *testing.T) {
	e := backoff.Exponential{Base: time.Second, Jitter: backoff.Jitter{Above: 1}}
	if d := e.Delay(1000); d < math.MaxInt64/4 {
		t.Errorf("Delay(1000) = %v, want near the largest duration", d)
	}
}

// TestDelayJitterRange checks the default source stays in the range.
func TestDelayJitterRange(t *testing.T) {
	e := backoff.Exponential{Base: time.Second, Max: time.Minute, Jitter: backoff.Jitter{Below: 0.5, Above: 0.5}}
	for range 1000 {
		if d := e.Delay(2); d < time.Second || d > 3*time.Second {
			t.Fatalf("Delay(2) = %v, want in [1s, 3s]", d)
		}
	}
}
