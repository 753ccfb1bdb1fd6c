package main

import (
	"context"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sitehost/sitehost/internal/api"
)

// drainTimeout bounds how long in-flight requests may take to finish once
// the listeners close; deploy/ sets terminationGracePeriodSeconds above
// server.shutdown_delay plus this.
const drainTimeout = 10 * time.Second

// endOnDrain ends Server-Sent Event streams when the listeners start
// draining: a stream never finishes by itself, so http.Server.Shutdown
// would wait for it to the drain timeout. Its client reconnects, with
// Last-Event-ID, to another replica. Other requests keep their context.
func (s *server) endOnDrain(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !acceptsSSE(r) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(s.streams, cancel)
		defer stop()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func acceptsSSE(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == api.MediaSSE {
			return true
		}
	}
	return false
}

// shutdown runs once the control work has stopped (ctx of run ended): it
// fails /readyz at once, keeps serving for server.shutdown_delay so load
// balancers take this replica out (unless the process is failing, then
// not), ends the SSE streams and drains the listeners.
func (s *server) shutdown(failed <-chan struct{}, servers []listener) {
	s.draining.Store(true)
	delay := s.cfg.Server.ShutdownDelay
	s.log.Info("shutting down: /readyz fails; serving on, then draining", "delay", delay, "drain", drainTimeout)
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-failed:
		t.Stop()
	}
	s.endStreams()
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, x := range servers {
		wg.Go(func() {
			if err := x.srv.Shutdown(ctx); err != nil {
				s.log.Warn("draining did not finish; closing what is left", "listener", x.name, "err", err)
				x.srv.Close() //nolint:errcheck // on the way out
			}
		})
	}
	wg.Wait()
	s.log.Info("drained")
}
