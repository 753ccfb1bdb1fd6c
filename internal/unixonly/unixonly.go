//go:build unix

// Package unixonly holds cmd/sitehost to Unix systems: imported there, it
// has no file for any other GOOS, so building sitehost for Windows stops
// at once with "build constraints exclude all Go files in …/unixonly"
// instead of compile errors deep in its packages. The server needs POSIX
// process groups (a build's timeout kills all it started), flock (the
// store's and caches' locks) and Unix file ownership; README, Platforms.
package unixonly
