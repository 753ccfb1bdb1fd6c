//go:build linux && cgo

package sandbox

// The launcher in C, fastlaunch_linux.c: a constructor that runs before
// the Go runtime does and, for `sandbox-exec` with Prepare's options,
// applies them and executes the program, so a launch costs an exec of a
// C program instead of starting our binary's Go runtime and package
// initialisation (~70 ms for sitehost, which links Hugo).

import "C"

// fastLaunch: the launcher in C is linked in.
const fastLaunch = true
