//go:build !linux

package pebbletest

import "os/exec"

// setDeathSignal does nothing off Linux: only t.Cleanup stops the servers.
func setDeathSignal(*exec.Cmd) {}
