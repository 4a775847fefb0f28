package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/cluster"
	"github.com/ark-sched/ark/scheduler/state"
)

// TestFailStatus: what a failed request answers. Every 503 says when to
// retry; a request whose client went away is not logged as the server's
// failure, whatever error the cancellation surfaced as.
func TestFailStatus(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name       string
		ctx        context.Context
		err        error
		code       int
		retryAfter string
		warned     bool
	}{
		{"no leader", context.Background(), fmt.Errorf("%w; retry shortly", cluster.ErrNoLeader), 503, "1", true},
		{"forward failed", context.Background(), fmt.Errorf("%w: forward to leader s1 at x: EOF", cluster.ErrNoLeader), 503, "1", true},
		{"busy leader", context.Background(), fmt.Errorf("apply: %w", cluster.ErrBusy), 503, "1", true},
		{"shut down", context.Background(), cluster.ErrShutdown, 503, "1", true},
		{"not found", context.Background(), fmt.Errorf("node %q: %w", "x", state.ErrNotFound), 404, "", false},
		{"deadline", context.Background(), context.DeadlineExceeded, 504, "", true},
		{"internal", context.Background(), errors.New("boom"), 500, "", true},
		{"client went away", canceled, fmt.Errorf("Put %q: %w", "http://leader/v1/nodes/x/heartbeat", context.Canceled), statusClientClosed, "", false},
		// A cancellation that is not the client's own is the server's.
		{"canceled, client still here", context.Background(), context.Canceled, 500, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			s := &Server{log: zap.New(core)}
			w := httptest.NewRecorder()
			s.fail(w, httptest.NewRequest(http.MethodPut, "/v1/nodes/x/heartbeat", nil).WithContext(c.ctx), c.err)
			if w.Code != c.code {
				t.Errorf("status %d, want %d (%s)", w.Code, c.code, w.Body)
			}
			if got := w.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if warned := logs.Len() > 0; warned != c.warned {
				t.Errorf("logged a warning: %v, want %v (%v)", warned, c.warned, logs.All())
			}
		})
	}
}

// TestHeartbeatNotRecordedIs503: a heartbeat that reaches a leader whose
// heartbeat timers are not running (leadership just moved) is answered
// 503, not 200 with a TTL the node was never armed with.
func TestHeartbeatNotRecordedIs503(t *testing.T) {
	s, c := testServer(t, "")
	ctx := context.Background()
	reg, err := c.RegisterNode(ctx, fakeNode("a", 1))
	if err != nil {
		t.Fatal(err)
	}
	// The new leader arms its heartbeat timers a moment after it takes
	// writes: a heartbeat in between is answered 503 too (and retried by
	// agents), so the test waits for one recorded.
	waitFor(t, 5*time.Second, "a heartbeat recorded", func() bool {
		_, err := c.Heartbeat(ctx, reg.ID)
		return err == nil
	})
	s.hb.stop()
	c.RetryFor = 200 * time.Millisecond
	_, err = c.Heartbeat(ctx, reg.ID)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable || !client.Retryable(err) {
		t.Fatalf("heartbeat while untracked: %v, want a retryable 503", err)
	}
}
