// Package certstore is a certmagic.Storage on a store.Store: certificates,
// ACME accounts and certmagic's locks live in the same bucket (or folder) as
// the sites, so several sitehost processes share them, and the lock makes
// only one of them order a given certificate.
//
// Key mapping: certmagic's key "certificates/ca/example.com/example.com.crt"
// is the object Prefix+key ("certs/certificates/…"), unchanged: both
// backends accept every key store.ValidKey accepts, '*' of wildcard names
// included, so no escaping is needed. Keys that store.ValidKey rejects
// (empty elements, ".", "..", '\\', NUL) are refused with an error that
// matches fs.ErrInvalid; certmagic never makes such keys (its KeyBuilder
// sanitises names).
//
// "Directories" are implicit, as in any object store: a directory exists
// while some object lies under it, and vanishes with its last object.
// Semantics follow certmagic's FileStorage where the Storage docs are
// vague; see each method.
//
// Locks are objects under Prefix+"locks/", taken and kept by conditional
// writes; see Lock.
package certstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/sitehost/sitehost/internal/store"
)

// Defaults of Options.
const (
	DefaultPrefix       = "certs/"
	DefaultLockTTL      = 2 * time.Minute
	DefaultPollInterval = time.Second
)

// MaxValueSize bounds what Store writes and Load reads. Certificates, keys
// and ACME metadata are a few KiB.
const MaxValueSize = 1 << 20

// Options configure New.
type Options struct {
	Store store.Store
	// Prefix is the key prefix all objects live under (default "certs/"); a
	// missing trailing slash is added.
	Prefix string
	// LockTTL: a lock not refreshed for this long is stale and may be taken
	// over (default 2m). The holder refreshes it every LockTTL/4.
	LockTTL time.Duration
	// PollInterval: how often Lock retries while the lock is held by someone
	// else (default 1s).
	PollInterval time.Duration
	// Logger gets lock takeovers and lost locks (default: discard).
	Logger *slog.Logger
}

// Storage is a certmagic.Storage and certmagic.TryLocker on a store.Store.
// It is safe for concurrent use. Several Storages, in one process or many,
// that share a store and Prefix share certificates and locks.
type Storage struct {
	st     store.Store
	prefix string // ends in "/"
	ttl    time.Duration
	poll   time.Duration
	log    *slog.Logger
	holder string // hostname/pid, written into lock objects for humans

	mu   sync.Mutex
	held map[string]*heldLock // by lock name
}

var (
	_ certmagic.Storage   = (*Storage)(nil)
	_ certmagic.TryLocker = (*Storage)(nil)
)

// errInvalidKey is what a key store.ValidKey rejects gets.
var errInvalidKey = fmt.Errorf("invalid key: %w", fs.ErrInvalid)

// New returns a Storage. It panics if opts.Store is nil or opts.Prefix is
// not a valid key prefix: both are programming errors.
func New(opts Options) *Storage {
	if opts.Store == nil {
		panic("certstore.New: nil Store")
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if !store.ValidKey(prefix) {
		panic(fmt.Sprintf("certstore.New: invalid Prefix %q", opts.Prefix))
	}
	ttl := opts.LockTTL
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return &Storage{
		st:     opts.Store,
		prefix: prefix + "/",
		ttl:    ttl,
		poll:   poll,
		log:    log,
		holder: host + "/" + strconv.Itoa(os.Getpid()),
		held:   make(map[string]*heldLock),
	}
}

// objectKey maps a certmagic key to its object key.
func (s *Storage) objectKey(key string) (string, error) {
	if !store.ValidKey(key) {
		return "", fmt.Errorf("%w %q", errInvalidKey, key)
	}
	return s.prefix + key, nil
}

// wrap annotates a store error with the operation and certmagic key; a
// missing object becomes fs.ErrNotExist, which certmagic checks for.
func wrap(op, key string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s %s: %w", op, key, fs.ErrNotExist)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// Store writes value at key, replacing any value there. Values larger than
// MaxValueSize are refused.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	k, err := s.objectKey(key)
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("storing %s: %d bytes is more than the limit of %d", key, len(value), MaxValueSize)
	}
	if _, err := s.st.Put(ctx, k, bytes.NewReader(value), int64(len(value)), store.PutOptions{}); err != nil {
		return wrap("storing", key, err)
	}
	return nil
}

// Load returns the value at key, or an error matching fs.ErrNotExist if
// there is none (a "directory" has no value either). Values larger than
// MaxValueSize are refused.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", key, err)
	}
	obj, info, err := s.st.Get(ctx, k)
	if err != nil {
		return nil, wrap("loading", key, err)
	}
	defer obj.Close()
	if info.Size > MaxValueSize {
		return nil, fmt.Errorf("loading %s: %d bytes is more than the limit of %d", key, info.Size, MaxValueSize)
	}
	data, err := io.ReadAll(io.LimitReader(obj, MaxValueSize+1))
	if err != nil {
		return nil, wrap("loading", key, err)
	}
	if len(data) > MaxValueSize {
		return nil, fmt.Errorf("loading %s: more than the limit of %d bytes", key, MaxValueSize)
	}
	return data, nil
}

// Delete removes key and, if key is a "directory", every key under it. A
// missing key is not an error. Keys stored under key while Delete runs may
// survive it.
func (s *Storage) Delete(ctx context.Context, key string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	// Collect first, then delete: the listing never sees its own deletes.
	var keys []string
	for info, err := range s.st.List(ctx, k+"/") {
		if err != nil {
			return wrap("deleting", key, err)
		}
		keys = append(keys, info.Key)
	}
	keys = append(keys, k)
	for _, obj := range keys {
		if err := s.st.Delete(ctx, obj); err != nil {
			return wrap("deleting", key, err)
		}
	}
	return nil
}

// Exists reports whether key is a value or a "directory". Errors (other
// than absence) report false, as the interface asks.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	k, err := s.objectKey(key)
	if err != nil {
		return false
	}
	if _, err := s.st.Stat(ctx, k); err == nil {
		return true
	} else if !errors.Is(err, store.ErrNotFound) {
		return false
	}
	dir, err := s.hasChildren(ctx, k)
	return err == nil && dir
}

// hasChildren reports whether some object lies under the object key k.
func (s *Storage) hasChildren(ctx context.Context, k string) (bool, error) {
	for _, err := range s.st.List(ctx, k+"/") {
		return err == nil, err // the first object settles it
	}
	return false, nil
}

// Stat describes key: a value is terminal, with its size and modification
// time; a "directory" is not terminal and has neither. A missing key is an
// error matching fs.ErrNotExist. (A key that is both a value and a
// directory, which object stores allow but certmagic never makes, is
// reported as the value.)
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("stating %s: %w", key, err)
	}
	info, err := s.st.Stat(ctx, k)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: info.ModTime, Size: info.Size, IsTerminal: true}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return certmagic.KeyInfo{}, wrap("stating", key, err)
	}
	dir, err := s.hasChildren(ctx, k)
	if err != nil {
		return certmagic.KeyInfo{}, wrap("stating", key, err)
	}
	if !dir {
		return certmagic.KeyInfo{}, fmt.Errorf("stating %s: %w", key, fs.ErrNotExist)
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// List returns the keys under the "directory" path, as full certmagic keys
// ("a/b" lists "a/b/c", not "c"), sorted. Like FileStorage:
//   - recursive=false: the immediate children, values and directories alike;
//   - recursive=true: every key below path, directories included (a caller
//     that wants only values checks Stat(key).IsTerminal, or just loads);
//   - a path that is a value has no children: an empty list, no error;
//   - a path that does not exist: an error matching fs.ErrNotExist.
//
// path "" is the root: everything under Prefix, lock objects (under
// "locks") included, as FileStorage's root holds its "locks" folder. The
// root always exists, so listing an empty root is not an error.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	base := s.prefix
	if path != "" {
		k, err := s.objectKey(path)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", path, err)
		}
		base = k + "/"
	}
	join := func(rel string) string {
		if path == "" {
			return rel
		}
		return path + "/" + rel
	}
	seen := make(map[string]bool)
	var keys []string
	add := func(rel string) {
		if !seen[rel] {
			seen[rel] = true
			keys = append(keys, join(rel))
		}
	}
	for info, err := range s.st.List(ctx, base) {
		if err != nil {
			return nil, wrap("listing", path, err)
		}
		rel := strings.TrimPrefix(info.Key, base)
		if !recursive {
			if dir, _, ok := strings.Cut(rel, "/"); ok {
				rel = dir
			}
			add(rel)
			continue
		}
		for i := range len(rel) {
			if rel[i] == '/' {
				add(rel[:i])
			}
		}
		add(rel)
	}
	if len(keys) == 0 && path != "" {
		if _, err := s.st.Stat(ctx, s.prefix+path); err != nil {
			return nil, wrap("listing", path, err) // absent: fs.ErrNotExist
		}
		return nil, nil // a value: no children
	}
	// Store order is byte order of the full keys; a directory added before
	// its children is already in place, but sort anyway for a stable,
	// documented order.
	slices.Sort(keys)
	return keys, nil
}
