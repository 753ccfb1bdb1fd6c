//go:build !linux

package npm

import "syscall"

// procAttr: the install's own process group, so a timeout kills npm and
// anything it started. No parent-death signal off Linux: an install whose
// server dies runs on until it ends.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
