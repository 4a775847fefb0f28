package server

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestDeadlinesKeepConnectionContext: a request that outlasts the body
// timeout (a long-poll, a slow forward) must not leave its kept-alive
// connection's context canceled: Go's server cancels it when its
// background read hits the read deadline, and every later request on the
// connection then began canceled (the agents' heartbeat 500s of issue 18).
// The body timeout still bounds a body that trickles.
func TestDeadlinesKeepConnectionContext(t *testing.T) {
	lim := DefaultLimits
	lim.BodyTimeout = 100 * time.Millisecond
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(withDeadlines(lim, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		if r.URL.Query().Get("sleep") != "" {
			time.Sleep(300 * time.Millisecond) // past the body timeout
		}
		if err := r.Context().Err(); err != nil {
			http.Error(w, "began canceled: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cl := srv.Client()
	for _, c := range []struct{ method, query, body string }{
		{http.MethodGet, "?sleep=1", ""},   // a long-poll
		{http.MethodPut, "", "{}"},         // the heartbeat after it
		{http.MethodPut, "?sleep=1", "{}"}, // a slow write
		{http.MethodGet, "", ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.query, strings.NewReader(c.body))
		if c.body == "" {
			req.Body = http.NoBody
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", c.method, c.query, resp.StatusCode, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want the one kept alive", n)
	}
}
