// Package tempdir gives a process its own folder for temporary files
// under a parent that other processes may share (a folder store's .tmp),
// so that the next process to start can tell what a killed one left:
// the folder parent/<prefix><id> belongs to whoever holds an flock on
// parent/<prefix><id>.lock. The kernel drops the flock when its holder
// dies, however it dies, so an unheld lock marks an abandoned folder. An
// flock says more than a pid would: pids are reused, and two containers
// sharing a volume each have a pid 1.
package tempdir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	lockExt = ".lock"
	// newExt marks a lock file not yet held: Sweep leaves it alone.
	newExt = ".lock-new"
)

// Dir is a folder of this process's own, held until Release or exit.
type Dir struct {
	path string
	lock *os.File
}

// Claim makes a new folder parent/<prefix><id> held by this process. The
// lock file is taken under a name Sweep ignores and renamed once held, so
// a Sweep running meanwhile never takes a new folder for an old one.
func Claim(parent, prefix string) (*Dir, error) {
	var b [6]byte
	rand.Read(b[:])
	name := prefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	base := filepath.Join(parent, name)
	f, err := os.OpenFile(base+newExt, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("claiming a temp folder: %w", err)
	}
	fail := func(err error) (*Dir, error) {
		f.Close()
		os.Remove(base + newExt)
		os.Remove(base + lockExt)
		return nil, fmt.Errorf("claiming temp folder %s: %w", base, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(err)
	}
	if err := os.Rename(base+newExt, base+lockExt); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(base, 0o755); err != nil {
		return fail(err)
	}
	return &Dir{path: base, lock: f}, nil
}

// Path is the folder.
func (d *Dir) Path() string { return d.path }

// Release removes the folder and everything in it, then the lock.
func (d *Dir) Release() error {
	err := os.RemoveAll(d.path)
	if rerr := os.Remove(d.path + lockExt); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return errors.Join(err, d.lock.Close())
}

// Owned reports whether name, an entry of the parent, is a folder or a
// lock file of Claim with prefix: another process's or this one's, which
// age-based cleaning must leave alone.
func Owned(name, prefix string) bool {
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	id := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, prefix), newExt), lockExt)
	pid, rnd, ok := strings.Cut(id, "-")
	if _, err := strconv.Atoi(pid); err != nil || !ok || len(rnd) != 12 {
		return false
	}
	_, err := hex.DecodeString(rnd)
	return err == nil
}

// Sweep removes the folders under parent, named with prefix, whose owner
// is gone: their lock is not held. It returns how many it removed; a
// folder it cannot remove is an error, and the others are still tried.
func Sweep(parent, prefix string) (int, error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return 0, fmt.Errorf("sweeping temp folders: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, lockExt) || !Owned(name, prefix) {
			continue
		}
		removed, err := sweepOne(filepath.Join(parent, strings.TrimSuffix(name, lockExt)))
		if removed {
			n++
		}
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// sweepOne removes folder base when it can take its lock.
func sweepOne(base string) (bool, error) {
	f, err := os.Open(base + lockExt)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // another Sweep was first
	}
	if err != nil {
		return false, fmt.Errorf("sweeping %s: %w", base, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil // its owner lives
		}
		return false, fmt.Errorf("sweeping %s: %w", base, err)
	}
	// Held now: the folder first, so a lock file never outlives it by our
	// doing (a folder without its lock would never be swept).
	if err := os.RemoveAll(base); err != nil {
		return false, fmt.Errorf("sweeping %s: %w", base, err)
	}
	if err := os.Remove(base + lockExt); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("sweeping %s: %w", base, err)
	}
	return true, nil
}
