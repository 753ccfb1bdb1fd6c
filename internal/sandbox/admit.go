package sandbox

import (
	"errors"
	"fmt"
)

// ErrUncontained: untrusted work and no sandbox here that contains it.
var ErrUncontained = errors.New("no sandbox contains it here")

// Admit decides whether a build's or an npm install's processes may run
// in sb (nil: none at all, the sandbox is off). Trusted work always may;
// untrusted work (fork previews) only where sb is Contained, or where the
// operator opted out with server.build.allow_unsandboxed. The same on
// every system: off Linux nothing is Contained, so untrusted work is
// refused there unless opted out.
func Admit(sb *Sandbox, untrusted, allowUnsandboxed bool) error {
	if !untrusted || allowUnsandboxed || (sb != nil && sb.Contained()) {
		return nil
	}
	desc := "the sandbox is off"
	if sb != nil {
		desc = sb.String()
	}
	return fmt.Errorf("%w (%s)", ErrUncontained, desc)
}

// offLinux is what a system without our sandbox (sandbox_other.go) says
// at startup: that there is none, and what a build does without it.
func offLinux(goos string) string {
	return "no sandbox on " + goos + ": missing landlock, namespaces, cgroups and the launcher's rlimits (Linux only);" +
		" builds run as the server's user with its files and network, build.memory a soft GOMEMLIMIT only;" +
		" untrusted builds and npm installs refused unless server.build.allow_unsandboxed"
}

// uncontained is a Sandbox off Linux (sandbox_other.go): nothing in
// force, not Contained, the program started as itself.
func uncontained(exe, goos string) *Sandbox {
	return &Sandbox{exe: exe, inForce: []string{"no sandbox on " + goos}}
}
