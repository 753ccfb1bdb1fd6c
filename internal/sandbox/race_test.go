//go:build race

package sandbox_test

// raceEnabled: the test binary, and so the sandboxed program, runs under
// ThreadSanitizer.
const raceEnabled = true
