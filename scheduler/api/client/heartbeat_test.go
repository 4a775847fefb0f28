package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

func TestHeartbeatTTLAndPace(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultHeartbeatTTL, "junk": DefaultHeartbeatTTL, "-3s": DefaultHeartbeatTTL, "1m0s": time.Minute, "10s": 10 * time.Second} {
		if got := HeartbeatTTL(in); got != want {
			t.Errorf("HeartbeatTTL(%q) = %v, want %v", in, got, want)
		}
	}
	// A third of the TTL, less at most a fifth of that: never later than
	// a third (three chances), and spread.
	seen := map[time.Duration]bool{}
	for range 200 {
		d := HeartbeatPace(60 * time.Second)
		if d > 20*time.Second || d < 16*time.Second {
			t.Fatalf("pace %v for a 60s TTL, want 16-20s", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct paces in 200: not spread", len(seen))
	}
}

func TestHeartbeatRetryAndJitter(t *testing.T) {
	for _, c := range []struct {
		ttl      time.Duration
		failures int
		lo, hi   time.Duration
	}{
		{60 * time.Second, 1, 500 * time.Millisecond, time.Second},
		{60 * time.Second, 2, time.Second, 2 * time.Second},
		{60 * time.Second, 4, 4 * time.Second, 8 * time.Second},
		{60 * time.Second, 30, 5 * time.Second, 10 * time.Second}, // a sixth of the TTL at most
		{10 * time.Second, 5, 833 * time.Millisecond, 1667 * time.Millisecond},
		{300 * time.Millisecond, 1, 50 * time.Millisecond, 100 * time.Millisecond}, // a test's TTL
	} {
		for range 50 {
			if d := HeartbeatRetry(c.ttl, c.failures); d < c.lo || d > c.hi {
				t.Fatalf("HeartbeatRetry(%v, %d) = %v, want %v..%v", c.ttl, c.failures, d, c.lo, c.hi)
			}
		}
	}
	seen := map[time.Duration]bool{}
	for range 100 {
		d := Jitter(time.Second)
		if d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("Jitter(1s) = %v", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("Jitter: %d distinct waits in 100", len(seen))
	}
}

func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&APIError{StatusCode: 503}, true},
		{&APIError{StatusCode: 500}, true},
		{&APIError{StatusCode: 504}, true},
		{&APIError{StatusCode: 429}, true},
		{&APIError{StatusCode: 404}, false},
		{&APIError{StatusCode: 403}, false},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{context.Canceled, false},
	} {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestNodesFollowsPages: Nodes asks for pages and follows the next-page
// token to the end; a server that does not page answers the whole list
// to the first ask.
func TestNodesFollowsPages(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e"}
	for _, c := range []struct {
		name  string
		pages bool
		want  int // requests
	}{
		{"paging server", true, 3},
		{"server without paging", false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			asks := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				asks++
				start := 0
				if tok := r.URL.Query().Get("next_token"); tok != "" {
					start = slices.Index(names, tok)
				}
				end := len(names)
				if c.pages {
					if r.URL.Query().Get("per_page") != strconv.Itoa(NodesPerPage) {
						t.Errorf("per_page %q", r.URL.Query().Get("per_page"))
					}
					end = min(start+2, len(names)) // the server's own cap
					if end < len(names) {
						w.Header().Set(api.NextTokenHeader, names[end])
					}
				}
				var out []*api.Node
				for _, n := range names[start:end] {
					out = append(out, &api.Node{Name: n})
				}
				_ = json.NewEncoder(w).Encode(out)
			}))
			defer srv.Close()
			cl, err := New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			nodes, err := cl.Nodes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range nodes {
				got = append(got, n.Name)
			}
			if !slices.Equal(got, names) || asks != c.want {
				t.Fatalf("got %v in %d asks, want %v in %d", got, asks, names, c.want)
			}
		})
	}
}

// TestHeartbeatTriesEachServerOnce: a heartbeat that every server answers
// 503 comes back after one try per server, retryable, for the agent's
// loop to pace; other calls still retry for RetryFor.
func TestHeartbeatTriesEachServerOnce(t *testing.T) {
	var asks atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asks.Add(1)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(api.Error{Error: "no leader elected; retry shortly"})
	}))
	defer srv.Close()
	cl, err := New(srv.URL, srv.URL, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cl.RetryFor = 2 * time.Second
	began := time.Now()
	_, err = cl.Heartbeat(context.Background(), "n1")
	if !Retryable(err) || asks.Load() != 3 || time.Since(began) > time.Second {
		t.Fatalf("heartbeat: %v after %d asks in %s; want a retryable 503 after 3 asks at once", err, asks.Load(), time.Since(began))
	}
	asks.Store(0)
	if _, err := cl.Leader(context.Background()); err == nil || asks.Load() <= 3 {
		t.Fatalf("leader: %v after %d asks; want RetryFor's rounds", err, asks.Load())
	}
}
