package pebbletest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill the servers when the test process dies,
// even without running its cleanups (a panic, or go test's timeout).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
