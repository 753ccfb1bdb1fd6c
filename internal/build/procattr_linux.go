package build

import "syscall"

// procAttr: the build's own process group (and pid namespace), so a
// timeout kills Hugo and anything it started; Pdeathsig, so a dying
// server takes its builds with it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
