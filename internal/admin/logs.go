package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/site"
)

// ssePing is how often an idle stream gets a comment, so proxies and load
// balancers do not close it.
const ssePing = 15 * time.Second

// sseChunk bounds one log event's text.
const sseChunk = 32 << 10

// getLog answers a deploy's build log: the text so far, or, for a client
// that accepts text/event-stream, a stream of it until the attempt ends.
func (a *Handler) getLog(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	name, id := site.Name(v["site"]), site.DeployID(v["id"])
	if wantsSSE(r) {
		a.streamLog(w, r, name, id)
		return
	}
	text, d, err := a.model.log(r.Context(), name, id)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(api.LogState, string(d.State))
	w.Write(text) //nolint:errcheck // client gone
}

func wantsSSE(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == api.MediaSSE {
			return true
		}
	}
	return false
}

// streamLog sends the log as Server-Sent Events: what there is, then
// every new line while the attempt runs, then an end event. Event IDs are
// byte offsets, so a client that reconnects with Last-Event-ID misses
// nothing and sees nothing twice.
func (a *Handler) streamLog(w http.ResponseWriter, r *http.Request, name site.Name, id site.DeployID) {
	off := 0
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := strconv.Atoi(last)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Last-Event-ID must be a byte offset from an earlier event")
			return
		}
		off = n
	}
	entry, running := a.opts.Journal.Find(name, id)
	running = running && !entry.Done()
	var (
		text []byte
		d    api.DeployDetail
	)
	if !running {
		// Finished: the whole log is known; answer errors before the stream starts.
		var err error
		if text, d, err = a.model.log(r.Context(), name, id); err != nil {
			a.fail(w, err)
			return
		}
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", api.MediaSSE)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: rc}

	if !running {
		off = min(off, len(text))
		s.log(text[off:], off)
		s.end(d.State, d.Error)
		return
	}
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	for {
		chunk, next, done, changed := entry.Read(off)
		if len(chunk) > 0 {
			s.log(chunk, off)
			off = next
		}
		if done {
			// The pointers say whether it is live now (the attempt only
			// knows that it went live).
			snap := entry.Snapshot()
			state, msg := attemptState(snap), snap.Error
			if d, err := a.model.Deploy(r.Context(), name, id); err == nil {
				state, msg = d.State, d.Error
			}
			s.end(state, msg)
			return
		}
		if s.err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-ping.C:
			s.comment("ping")
		}
	}
}

// deadline gives the next write two ping intervals: a stream outlives the
// server's write timeout, but a client that stops reading is let go.
func (s *sse) deadline() {
	s.rc.SetWriteDeadline(time.Now().Add(2 * ssePing)) //nolint:errcheck // not every writer has deadlines
}

// sse writes events; after the first write error it writes nothing more.
type sse struct {
	w   io.Writer
	rc  *http.ResponseController
	err error
}

// log sends text, which starts at byte offset off of the log, in events
// of whole lines of at most sseChunk bytes (a longer line is split).
func (s *sse) log(text []byte, off int) {
	for len(text) > 0 && s.err == nil {
		n := len(text)
		if n > sseChunk {
			n = sseChunk
			if i := bytes.LastIndexByte(text[:n], '\n'); i > 0 {
				n = i + 1
			} else {
				for n > 0 && !utf8.RuneStart(text[n]) {
					n-- // never split a character: JSON would mangle both halves
				}
			}
		}
		off += n
		s.event(api.EventLog, strconv.Itoa(off), api.LogChunk{Text: string(text[:n])})
		text = text[n:]
	}
}

func (s *sse) end(state site.Outcome, errMsg string) {
	s.event(api.EventEnd, "", api.LogEnd{State: state, Error: errMsg})
}

func (s *sse) event(name, id string, data any) {
	if s.err != nil {
		return
	}
	b, err := json.Marshal(data) // one line: JSON escapes newlines
	if err != nil {
		s.err = err
		return
	}
	s.deadline()
	var buf bytes.Buffer
	if id != "" {
		fmt.Fprintf(&buf, "id: %s\n", id)
	}
	fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", name, b)
	if _, s.err = s.w.Write(buf.Bytes()); s.err == nil {
		s.err = s.rc.Flush()
	}
}

func (s *sse) comment(text string) {
	if s.err != nil {
		return
	}
	s.deadline()
	if _, s.err = fmt.Fprintf(s.w, ": %s\n\n", text); s.err == nil {
		s.err = s.rc.Flush()
	}
}
