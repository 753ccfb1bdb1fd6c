package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/backoff"
)

// followRetries is how many times in a row a dropped log stream is
// reconnected,
// the first after console.backoff, each wait twice the one before. A
// connection that brought new text resets the count; one that only
// repeats what was printed does not, so a server that keeps dropping the
// stream at the same place is given up on.
const followRetries = 5

// followLog streams a deploy's log to out until its end event, resuming
// with Last-Event-ID when an open stream drops. Log event IDs are byte
// offsets, so text the server sends again after a resume is printed once.
func (con console) followLog(ctx context.Context, c *client, path string, out *logPrinter) (api.LogEnd, error) {
	f := &follower{out: out}
	connected, fails := false, 0
	for {
		before := f.printed
		body, err := c.stream(ctx, path, f.lastID)
		if err == nil {
			connected = true
			err = readEvents(body, f.event)
			body.Close()
			if f.end != nil {
				return *f.end, nil
			}
		}
		if ctx.Err() != nil {
			return api.LogEnd{}, ctx.Err()
		}
		if !connected || !retryable(err) {
			return api.LogEnd{}, err
		}
		if f.printed > before {
			fails = 0
		}
		fails++
		if fails > followRetries {
			return api.LogEnd{}, fmt.Errorf("following %s: gave up after %d tries: %w", path, fails, err)
		}
		select {
		case <-ctx.Done():
			return api.LogEnd{}, ctx.Err()
		case <-con.after(backoff.Exponential{Base: con.backoff}.Delay(fails)):
		}
	}
}

// follower is where followLog is in the log.
type follower struct {
	out     *logPrinter
	lastID  string      // of the last log event
	printed int64       // bytes of log written to out
	end     *api.LogEnd // the end event, once seen
}

// event handles one event of the stream; done after the end event.
func (f *follower) event(ev sseEvent) (done bool, err error) {
	switch ev.name {
	case api.EventLog:
		var chunk api.LogChunk
		if err := json.Unmarshal([]byte(ev.data), &chunk); err != nil {
			return false, fmt.Errorf("reading a log event: %w", err)
		}
		text := chunk.Text
		if ev.id != "" {
			f.lastID = ev.id
			if after, err := strconv.ParseInt(ev.id, 10, 64); err == nil {
				text = unseen(text, after, f.printed)
				f.printed = max(f.printed, after)
			}
		} else {
			f.printed += int64(len(text))
		}
		if text != "" {
			return false, f.out.text(text)
		}
	case api.EventEnd:
		var end api.LogEnd
		if err := json.Unmarshal([]byte(ev.data), &end); err != nil {
			return false, fmt.Errorf("reading the end event: %w", err)
		}
		f.end = &end
		return true, nil
	}
	return false, nil
}

// unseen is the part of a log chunk ending at byte offset after that
// lies beyond the first printed bytes.
func unseen(text string, after, printed int64) string {
	start := after - int64(len(text))
	switch {
	case after <= printed:
		return ""
	case start < printed:
		return text[printed-start:]
	}
	return text
}

// retryable: a dropped or refused connection, a cut stream or a 5xx is
// worth another try; a refused token, a 404 or a bad answer are not.
func retryable(err error) bool {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae.Status >= http.StatusInternalServerError
	}
	_, handling := errors.AsType[handlerError](err)
	return !handling && !errors.Is(err, errNotStream)
}

// handlerError is an error of readEvents' caller, not of the stream.
type handlerError struct{ error }

func (e handlerError) Unwrap() error { return e.error }

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, name, data string
}

// readEvents calls fn with each event of an SSE stream until fn reports
// done or fails, or the stream ends (errStreamClosed).
func readEvents(r io.Reader, fn func(sseEvent) (done bool, err error)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		ev   sseEvent
		data []string
	)
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) {
			return errStreamClosed
		}
		if err != nil {
			return fmt.Errorf("reading the log stream: %w", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" { // dispatch
			if data != nil {
				ev.data = strings.Join(data, "\n")
				if ev.name == "" {
					ev.name = "message"
				}
				done, err := fn(ev)
				if err != nil {
					return handlerError{err}
				}
				if done {
					return nil
				}
			}
			ev, data = sseEvent{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // a comment, e.g. ": ping"
		case "id":
			ev.id = value
		case "event":
			ev.name = value
		case "data":
			data = append(data, value)
		}
	}
}
