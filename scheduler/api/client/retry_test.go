package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRetryNeverAnswered: addresses with nothing listening (refused, no
// such host) fail within the short grace with an UnreachableError, not
// after RetryFor.
func TestRetryNeverAnswered(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []string
		want  string
	}{
		{"refused", []string{closedAddr(t)}, "connection refused"},
		{"all refused", []string{closedAddr(t), closedAddr(t)}, "connection refused"},
		{"no such host", []string{"no-such-host.invalid:4680"}, "no such host no-such-host.invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.addrs...)
			if err != nil {
				t.Fatal(err)
			}
			c.RetryFor = 10 * time.Second
			began := time.Now()
			_, err = c.Jobs(context.Background(), "")
			took := time.Since(began)
			var ue *UnreachableError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "no Ark server at http://") {
				t.Fatalf("err %v, want an UnreachableError saying %q", err, tc.want)
			}
			if took > 2*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// TestRetryKeepsFailover: a server that answered before and now refuses
// (restarting) is retried for RetryFor, and so is one answering 503 (an
// election); the call succeeds once it is back.
func TestRetryKeepsFailover(t *testing.T) {
	var unavailable atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unavailable.Load() {
			http.Error(w, `{"error":"no leader"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("[]"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	c, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.RetryFor = 10 * time.Second
	if _, err := c.Jobs(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	// Back on the same port after a while longer than the never-answered
	// grace, answering 503 for a while more.
	unavailable.Store(true)
	go func() {
		time.Sleep(3 * unreachableGrace)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		srv2 := httptest.NewUnstartedServer(h)
		srv2.Listener = ln
		srv2.Start()
		t.Cleanup(srv2.Close)
		time.Sleep(3 * unreachableGrace)
		unavailable.Store(false)
	}()
	if _, err := c.Jobs(context.Background(), ""); err != nil {
		t.Fatalf("a restarted server: %v", err)
	}
}
