//go:build !linux || !cgo

package sandbox

// fastLaunch: no launcher in C without cgo; Main does every launch.
const fastLaunch = false
