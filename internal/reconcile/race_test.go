//go:build race

package reconcile_test

// raceEnabled: the race detector's shadow memory would be measured with
// the server's, and it slows inflating a 1 GiB blob tenfold.
const raceEnabled = true
