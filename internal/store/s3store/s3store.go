// Package s3store is a store.Store on an S3 bucket (AWS S3, MinIO, or another
// S3-compatible service), through minio-go. Key "a/b/c" is the object
// "a/b/c" in the bucket; ETags are the service's own.
//
// Conditional puts map to the If-Match and If-None-Match headers on PUT,
// which the service checks atomically (AWS S3 since late 2024, MinIO). A
// put is one PUT request for bodies up to 16 MiB, a multipart upload above
// that; either way the object appears whole or not at all.
//
// Put bodies are streamed once, so minio-go never retries a single PUT: a
// retry of a conditional PUT whose first attempt did land would report a
// false precondition failure. (Parts of a multipart upload are buffered
// and may be retried.) Other requests are retried up to Options.MaxRetries
// times; callers are expected to retry whole operations.
package s3store

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sitehost/sitehost/internal/store"
)

const (
	// defaultMaxRetries keeps an outage from hanging each call: minio-go's
	// default of 10 backs off for about 4 s before it gives up.
	defaultMaxRetries = 3

	// singlePutMax is the largest body sent as one PUT; it is also the part
	// size of multipart uploads of unknown size, which caps those at
	// 10,000 parts = 160 GiB. Known sizes get minio-go's own part sizes.
	singlePutMax = 16 << 20
)

// Options configure New.
type Options struct {
	Endpoint  string // host:port
	Bucket    string
	Region    string // "" = ask the service (one request per bucket, cached)
	AccessKey string
	SecretKey string
	TLS       bool
	// MaxRetries bounds minio-go's own retries of one request (default 3:
	// callers retry whole operations themselves; minio-go's default of 10
	// would make an outage hang each call for many seconds).
	MaxRetries int
	// Transport overrides the HTTP transport (tests; nil = a default with
	// timeouts and a connection pool sized for parallel uploads).
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// Store is a store.Store on an S3 bucket. It is safe for concurrent use.
type Store struct {
	client   *minio.Client
	core     minio.Core // for GetObject that returns body and info in one request
	bucket   string
	endpoint string
	log      *slog.Logger
}

var _ store.Store = (*Store)(nil)

// New connects to the service and checks, with one request, that the bucket
// exists and the credentials are accepted.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Endpoint == "" || opts.Bucket == "" {
		return nil, errors.New("opening s3 store: endpoint and bucket are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := opts.Transport
	if transport == nil {
		transport = defaultTransport()
	}
	retries := opts.MaxRetries
	if retries <= 0 {
		retries = defaultMaxRetries
	}
	client, err := minio.New(opts.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure:     opts.TLS,
		Region:     opts.Region,
		Transport:  transport,
		MaxRetries: retries,
	})
	if err != nil {
		return nil, fmt.Errorf("opening s3 store %s: %w", opts.Endpoint, err)
	}
	s := &Store{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   opts.Bucket,
		endpoint: opts.Endpoint,
		log:      log.With("bucket", opts.Bucket, "endpoint", opts.Endpoint),
	}
	ok, err := client.BucketExists(ctx, opts.Bucket)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		} else if isAuthError(err) {
			return nil, fmt.Errorf("opening s3 store: checking bucket %s at %s: credentials rejected for access key %q (check the access and secret key): %w",
				opts.Bucket, opts.Endpoint, opts.AccessKey, err)
		}
		return nil, fmt.Errorf("opening s3 store: checking bucket %s at %s: %w", opts.Bucket, opts.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("opening s3 store: bucket %s does not exist at %s: create it first", opts.Bucket, opts.Endpoint)
	}
	return s, nil
}

// defaultTransport dials and waits for headers with bounds, so a dead
// service fails calls instead of hanging them, and keeps enough idle
// connections for parallel uploads to one host.
func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		// Objects are served as stored: Go must not ask for gzip and
		// transparently unpack it.
		DisableCompression: true,
	}
}

// Put writes the object. See store.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	if opts.IfMatch != "" && opts.IfNoneMatch {
		return store.Info{}, fmt.Errorf("putting %s: both IfMatch and IfNoneMatch set", key)
	}
	po := minio.PutObjectOptions{ContentType: opts.ContentType}
	switch {
	case opts.IfNoneMatch:
		po.SetMatchETagExcept("*")
	case opts.IfMatch != "":
		po.SetMatchETag(opts.IfMatch)
	}

	br := &bodyReader{ctx: ctx, r: r, left: size}
	var body io.Reader = br
	if size < 0 {
		// Buffer up to one part: most bodies of unknown size (logs) are
		// small, and one PUT beats a three-request multipart upload.
		var head bytes.Buffer
		n, err := io.CopyN(&head, body, singlePutMax+1)
		switch {
		case errors.Is(err, io.EOF):
			// Hide Seek: minio-go retries a seekable body, see the package doc.
			body, size = struct{ io.Reader }{bytes.NewReader(head.Bytes())}, n
		case err != nil:
			return store.Info{}, s.putError(ctx, key, opts, fmt.Errorf("reading body: %w", err))
		default:
			body = io.MultiReader(&head, body)
			po.PartSize = singlePutMax
		}
	}

	up, err := s.client.PutObject(ctx, s.bucket, key, body, size, po)
	if err != nil {
		if br.err != nil && ctx.Err() == nil {
			// The body failed, not the service: minio-go reports that as
			// "Connection closed by foreign host" whenever the error text
			// holds "EOF", which would hide a short body.
			return store.Info{}, fmt.Errorf("putting %s: reading body: %w", key, br.err)
		}
		return store.Info{}, s.putError(ctx, key, opts, err)
	}
	// A single PUT's response has no Last-Modified: the local clock stands
	// in for it (Stat gives the service's).
	mod := up.LastModified
	if mod.IsZero() {
		mod = time.Now().UTC()
	}
	return store.Info{Key: key, Size: up.Size, ETag: up.ETag, ModTime: mod}, nil
}

// putError maps a failed Put: a lost condition becomes a
// *store.PreconditionError, the rest is wrapped like other calls.
func (s *Store) putError(ctx context.Context, key string, opts store.PutOptions, err error) error {
	if ctx.Err() == nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && (er.StatusCode == http.StatusPreconditionFailed ||
			er.Code == "PreconditionFailed" || er.Code == "ConditionalRequestConflict") {
			return &store.PreconditionError{Key: key, Want: opts.IfMatch}
		}
	}
	return s.wrap(ctx, "putting", key, err)
}

// Get opens the object with one GET; the body streams as it is read, and
// a Read after a Seek elsewhere opens a ranged GET. The Object reads with
// ctx, so cancelling ctx ends its reads. See store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Object, store.Info, error) {
	if err := checkKey(key); err != nil {
		return nil, store.Info{}, fmt.Errorf("getting %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, store.Info{}, fmt.Errorf("getting %s: %w", key, err)
	}
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, store.Info{}, s.wrap(ctx, "getting", key, err)
	}
	info := toInfo(key, oi)
	return &object{s: s, ctx: ctx, info: info, body: body}, info, nil
}

// Stat describes the object. See store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, fmt.Errorf("stating %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("stating %s: %w", key, err)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return store.Info{}, s.wrap(ctx, "stating", key, err)
	}
	return toInfo(key, oi), nil
}

// List yields the objects whose keys start with prefix, in key order (S3
// lists in byte order). See store.Store. Objects whose keys store.ValidKey
// rejects, such as folder markers ("dir/") made by other tools, are skipped.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[store.Info, error] {
	return func(yield func(store.Info, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(store.Info{}, fmt.Errorf("listing %s: %w", prefix, err))
			return
		}
		if !canMatch(prefix) {
			return // and MinIO would reject a prefix such as "../"
		}
		// ListObjectsIter pages synchronously in this goroutine, so
		// stopping early leaves no lister behind; the derived ctx also
		// ends a page request the consumer abandons mid-flight.
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		noOwner := false
		opts := minio.ListObjectsOptions{Prefix: prefix, Recursive: true, FetchOwner: &noOwner}
		for oi := range s.client.ListObjectsIter(lctx, s.bucket, opts) {
			if oi.Err != nil {
				yield(store.Info{}, s.wrap(ctx, "listing", prefix, oi.Err))
				return
			}
			if !store.ValidKey(oi.Key) {
				s.log.DebugContext(ctx, "s3store: skipping object with an invalid key", "key", oi.Key)
				continue
			}
			if !yield(toInfo(oi.Key, oi), nil) {
				return
			}
		}
		// minio-go ends the listing silently when ctx is cancelled between
		// pages: without this check a cancelled List would look complete.
		if err := ctx.Err(); err != nil {
			yield(store.Info{}, fmt.Errorf("listing %s: %w", prefix, err))
		}
	}
}

// Delete removes the object; a missing key is not an error. See store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil {
		if err := s.wrap(ctx, "deleting", key, err); !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// wrap maps a minio-go error: a done ctx reports ctx's error (minio-go
// wraps it in a url.Error, or returns its own), a missing key wraps
// store.ErrNotFound, and a missing bucket says so.
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s %s: %w", op, key, ctxErr)
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case er.Code == minio.NoSuchBucket:
			// Not ErrNotFound: every key would look absent, and create-only
			// logic would act on that.
			return fmt.Errorf("%s %s: bucket %s does not exist at %s: %w", op, key, s.bucket, s.endpoint, err)
		case er.Code == minio.NoSuchKey || er.Code == "NoSuchObject" || er.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s %s: %w", op, key, store.ErrNotFound)
		}
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// isAuthError reports whether the service rejected the credentials. A HEAD
// has no error body, so a bare 403 counts too.
func isAuthError(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	switch er.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken":
		return true
	}
	return er.StatusCode == http.StatusForbidden
}

// canMatch reports whether some valid key starts with prefix: the folder
// elements it names in full must be valid, and it must not hold characters
// that ValidKey bans anywhere.
func canMatch(prefix string) bool {
	if strings.ContainsAny(prefix, "\\\x00") {
		return false
	}
	dir := prefix[:strings.LastIndexByte(prefix, '/')+1]
	return dir == "" || store.ValidKey(strings.TrimSuffix(dir, "/"))
}

func checkKey(key string) error {
	if !store.ValidKey(key) {
		return fmt.Errorf("invalid key %q", key)
	}
	return nil
}

func toInfo(key string, oi minio.ObjectInfo) store.Info {
	return store.Info{Key: key, Size: oi.Size, ETag: oi.ETag, ModTime: oi.LastModified}
}

// bodyReader reads a Put body: it stops once ctx is done, so a cancelled
// upload ends at the next read, and reports a body shorter than the
// declared size as io.ErrUnexpectedEOF, so the request fails before the
// service could store a truncated object.
type bodyReader struct {
	ctx  context.Context
	r    io.Reader
	left int64 // bytes still owed; < 0 when the size is unknown
	err  error // the first failure other than EOF, for Put to report
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.read(p)
	if err != nil && !errors.Is(err, io.EOF) && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *bodyReader) read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if b.left == 0 {
		return 0, io.EOF
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	if b.left < 0 {
		return n, err
	}
	b.left -= int64(n)
	switch {
	case err == io.EOF && b.left > 0:
		return n, fmt.Errorf("body ended %d bytes short of its declared size: %w", b.left, io.ErrUnexpectedEOF)
	case err == io.EOF:
		return n, nil // the next Read reports EOF
	}
	return n, err
}
