package npm

import "syscall"

// procAttr: the install's own process group, so a timeout kills npm and
// anything it started; Pdeathsig, so a dying server takes its installs
// with it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
