//go:build !linux

package build

import "syscall"

// procAttr: the build's own process group, so a timeout kills Hugo and
// anything it started. No parent-death signal off Linux: a build whose
// server dies runs on until it ends.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
