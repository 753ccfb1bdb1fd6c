// Package accesslog records each HTTP answer — status, body bytes,
// duration — and writes one log line per request, with secrets in the
// query masked.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/sitehost/sitehost/internal/redact"
)

// Entry describes one answer.
type Entry struct {
	Listener string // "http", "https", "admin"
	Site     string // "" when no site is served at Host
	Host     string
	Method   string
	Path     string
	RawQuery string
	Remote   string
	Status   int
	Bytes    int64 // body bytes written
	Duration time.Duration
}

// Log writes e as one line at Info.
func Log(ctx context.Context, l *slog.Logger, e Entry) {
	l.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("listener", e.Listener),
		slog.String("site", e.Site),
		slog.String("host", e.Host),
		slog.String("method", e.Method),
		slog.String("path", redact.URI(e.Path, e.RawQuery)),
		slog.Int("status", e.Status),
		slog.Int64("bytes", e.Bytes),
		slog.Duration("duration", e.Duration),
		slog.String("remote", e.Remote),
	)
}

// Handler calls observe after next answers each request.
func Handler(listener string, next http.Handler, observe func(*http.Request, Entry)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &Recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		observe(r, rec.Entry(listener, r, start))
	})
}

// Recorder notes the status and body size of an answer. It keeps the
// writer's fast paths: ReadFrom (sendfile for files on disk) and, through
// Unwrap, http.ResponseController's Flush and deadlines.
type Recorder struct {
	http.ResponseWriter
	Status int
	Bytes  int64
}

// Entry describes the answer to r, started at start.
func (r *Recorder) Entry(listener string, req *http.Request, start time.Time) Entry {
	status, n := r.Code(), r.Bytes
	if req.Method == http.MethodHead {
		n = 0 // net/http drops the body of an answer to HEAD
	}
	return Entry{
		Listener: listener, Host: req.Host, Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery,
		Remote: req.RemoteAddr, Status: status, Bytes: n, Duration: time.Since(start),
	}
}

// Code is the status answered: 200 when the handler wrote nothing, as
// net/http sends then.
func (r *Recorder) Code() int {
	if r.Status == 0 {
		return http.StatusOK
	}
	return r.Status
}

func (r *Recorder) WriteHeader(code int) {
	if r.Status == 0 && code >= 200 {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(p []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.Bytes += int64(n)
	return n, err
}

func (r *Recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.Bytes += n
	return n, err
}

func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
