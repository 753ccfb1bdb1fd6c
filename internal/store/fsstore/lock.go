package fsstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Conditional puts lock one of 256 lock files, root/.locks/00 … ff, picked
// by the first byte of sha256(key). Why striped rather than one global lock:
// unrelated sites' pointer flips do not queue behind each other. Why not
// one file per key: the files could never be deleted safely (a waiter may
// hold an fd of an unlinked file and lock it alone), so they would pile up;
// 256 fixed files bound that, and a shared stripe costs only a short wait.
const lockStripes = 256

// Polling bounds for a contended flock. Polling with LOCK_NB, rather than a
// blocking flock, is what lets a waiter give up when its ctx ends.
const (
	lockPollMin = 500 * time.Microsecond
	lockPollMax = 20 * time.Millisecond
)

// lock takes the exclusive lock for key, first the in-process stripe slot
// and then the flock that excludes other processes. The returned func
// releases both.
func (s *Store) lock(ctx context.Context, key string) (unlock func(), err error) {
	sum := sha256.Sum256([]byte(key))
	slot := s.stripes[sum[0]]
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for lock: %w", ctx.Err())
	}
	defer func() {
		if err != nil {
			<-slot
		}
	}()

	name := filepath.Join(s.locks, hex.EncodeToString(sum[:1]))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	// flock locks belong to the open file description, so this fd's lock
	// conflicts with every other open of the file, in this process or not.
	fd := int(f.Fd())
	wait := lockPollMin
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", name, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("waiting for lock: %w", ctx.Err())
		}
		wait = min(2*wait, lockPollMax)
	}
	return func() {
		_ = f.Close() // closing the last fd releases the flock
		<-slot
	}, nil
}
