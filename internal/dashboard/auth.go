package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/bearer"
)

const (
	cookieName = "sitehost_session"
	// macPrefix separates this MAC's domain from any other use of the token.
	macPrefix = "sitehost-dashboard-session|"
	// maxForm bounds the login form; it holds a token and a path.
	maxForm = 16 << 10
	noToken = "Logging in is disabled: the server has no API token set (server.api_token_env)."
)

// SessionOK reports whether r carries a valid dashboard session cookie; the
// admin API uses it to let the dashboard's own scripts call GET endpoints
// (EventSource cannot send headers).
func (h *Handler) SessionOK(r *http.Request) bool {
	if h.token == "" {
		return false
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return false
	}
	exp, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return false
	}
	now := h.now()
	expiry := time.Unix(unix, 0)
	// A cookie may not outlive the current TTL either, so shortening the
	// TTL takes effect on sessions already issued.
	if !now.Before(expiry) || expiry.After(now.Add(h.ttl)) {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, h.mac(exp))
}

// mac signs a session's expiry with the token as the key.
func (h *Handler) mac(expiry string) []byte {
	m := hmac.New(sha256.New, []byte(h.token))
	m.Write([]byte(macPrefix + expiry))
	return m.Sum(nil)
}

// headerAuthed marks a request let in by its Authorization header, so the
// page it gets shows the navigation without checking the token twice.
type headerAuthed struct{}

// authorized reports whether r was let in, by session or by the token in
// its header; it checks nothing itself.
func (h *Handler) authorized(r *http.Request) bool {
	ok, _ := r.Context().Value(headerAuthed{}).(bool)
	return ok || h.SessionOK(r)
}

// requireAuth lets through requests with a session or the token in an
// Authorization header (scripts and curl read the pages without logging
// in). A person browsing is sent to the login form and back; anything
// else, including dashboard.js's background refreshes, gets a 401 it can
// act on, or a 429 after too many wrong tokens.
func (h *Handler) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.SessionOK(r) {
			next.ServeHTTP(w, r)
			return
		}
		v, retry, sent := h.guard.Header(r)
		switch {
		case sent && v == bearer.Right:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), headerAuthed{}, true)))
			return
		case sent && v == bearer.Limited:
			h.tooMany(w, r, retry, "error", page{Title: "Too many wrong tokens", Data: &pageError{
				Status: http.StatusTooManyRequests, Title: "Too many wrong tokens",
				Message: tooManyMessage}})
			return
		}
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("X-Requested-With") == "" {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="sitehost"`)
		h.render(w, r, http.StatusUnauthorized, "error", page{Title: "Log in first", Data: &pageError{
			Status: http.StatusUnauthorized, Title: "Log in first",
			Message: "This needs a dashboard session or the API token."}})
	})
}

const tooManyMessage = "Too many wrong tokens came from your address; wait a few seconds before trying again."

// tooMany answers 429 with Retry-After.
func (h *Handler) tooMany(w http.ResponseWriter, r *http.Request, retry time.Duration, name string, p page) {
	bearer.SetRetryAfter(w.Header(), retry)
	h.render(w, r, http.StatusTooManyRequests, name, p)
}

// loginView is the login page's data.
type loginView struct {
	Next     string
	Error    string
	Disabled string
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) error {
	next := localPath(r.URL.Query().Get("next"))
	if h.SessionOK(r) {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	v := loginView{Next: next}
	if h.token == "" {
		v.Disabled = noToken
	}
	h.render(w, r, http.StatusOK, "login", page{Title: "Log in", Data: v})
	return nil
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return &pageError{Status: http.StatusBadRequest, Title: "Bad request", Message: "The login form could not be read."}
	}
	v := loginView{Next: localPath(r.PostForm.Get("next"))}
	if h.token == "" {
		v.Disabled = noToken
		h.log.Warn("dashboard login refused", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "login", page{Title: "Log in", Data: v})
		return nil
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		// Not a guess: nothing to count.
		v.Error = "Enter the token."
		h.render(w, r, http.StatusUnauthorized, "login", page{Title: "Log in", Data: v})
		return nil
	}
	switch verdict, retry := h.guard.Check(r, tok); verdict {
	case bearer.Limited:
		h.log.Warn("dashboard login refused: too many wrong tokens", "remote", r.RemoteAddr)
		v.Error = tooManyMessage
		h.tooMany(w, r, retry, "login", page{Title: "Log in", Data: v})
		return nil
	case bearer.Wrong:
		v.Error = "Wrong token."
	default:
		expiry := h.now().Add(h.ttl).Unix()
		exp := strconv.FormatInt(expiry, 10)
		http.SetCookie(w, &http.Cookie{
			Name:     cookieName,
			Value:    exp + "." + hex.EncodeToString(h.mac(exp)),
			Path:     "/",
			MaxAge:   int(h.ttl / time.Second),
			HttpOnly: true,
			Secure:   r.TLS != nil,
			SameSite: http.SameSiteStrictMode,
		})
		h.log.Info("dashboard login", "remote", r.RemoteAddr)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, v.Next, http.StatusSeeOther)
		return nil
	}
	h.log.Warn("dashboard login refused", "remote", r.RemoteAddr)
	h.render(w, r, http.StatusUnauthorized, "login", page{Title: "Log in", Data: v})
	return nil
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// localPath returns next if it is a path on this server, else "/": a
// login link must not be able to send someone to another site
// ("//evil.example" and "/\evil.example" are other hosts to a browser).
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}
