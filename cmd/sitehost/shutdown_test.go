package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestEndOnDrain: a Server-Sent Events request ends when the listeners
// start draining; any other request keeps its context.
func TestEndOnDrain(t *testing.T) {
	s := &server{}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	started := make(chan context.Context, 2)
	h := s.endOnDrain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- r.Context()
		<-r.Context().Done() // a stream: until the client or the server ends it
	}))
	plainCtx, cancelPlain := context.WithCancel(context.Background())
	defer cancelPlain()
	plain := httptest.NewRequest(http.MethodGet, "/api/v1/sites", nil).WithContext(plainCtx)
	go h.ServeHTTP(httptest.NewRecorder(), plain)
	pc := <-started

	sse := httptest.NewRequest(http.MethodGet, "/api/v1/sites/a/deploys/x/log", nil)
	sse.Header.Set("Accept", "text/plain, text/event-stream")
	done := make(chan struct{})
	go func() { h.ServeHTTP(httptest.NewRecorder(), sse); close(done) }()
	<-started
	s.endStreams()
	<-done // the stream ended; a hang here fails the test by its timeout
	if pc.Err() != nil {
		t.Error("draining ended a request that is not a stream")
	}
}
