//go:build !linux

package miniotest

import "os/exec"

// setDeathSignal does nothing off Linux: only t.Cleanup stops the server.
func setDeathSignal(*exec.Cmd) {}
