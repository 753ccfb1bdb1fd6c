package forge

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBodySnippet bounds how much of an error response is kept.
const maxBodySnippet = 512

// apiError is a non-2xx answer from a forge.
type apiError struct {
	Code       int
	Status     string // e.g. "403 Forbidden"
	Body       string // at most maxBodySnippet bytes, token redacted
	Retryable  bool
	RetryAfter time.Duration // server-requested wait; valid if HasRetry
	HasRetry   bool
}

func (e *apiError) Error() string {
	if e.Body == "" {
		return e.Status
	}
	return e.Status + ": " + e.Body
}

// newAPIError reads a bounded snippet of resp's body and decides whether
// the request is worth retrying: 5xx and 429 are, and so is a 403 that
// GitHub marks as a rate limit (Retry-After, or x-ratelimit-remaining: 0,
// per https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
// Other 4xx are not.
func newAPIError(resp *http.Response, token string) *apiError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodySnippet))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	body := strings.ToValidUTF8(string(b), "")
	if token != "" {
		body = strings.ReplaceAll(body, token, "REDACTED")
	}
	status := resp.Status
	if status == "" {
		status = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	}
	e := &apiError{Code: resp.StatusCode, Status: status, Body: strings.TrimSpace(body)}
	e.RetryAfter, e.HasRetry = retryAfter(resp.Header, time.Now())
	rateLimited := e.HasRetry || resp.Header.Get("X-RateLimit-Remaining") == "0"
	e.Retryable = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusForbidden && rateLimited
	return e
}

// retryAfter reads Retry-After (delay-seconds or an HTTP date), falling
// back to GitHub's x-ratelimit-reset (epoch seconds) when no requests remain.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if epoch, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Unix(epoch, 0).Sub(now), 0), true
		}
	}
	return 0, false
}
