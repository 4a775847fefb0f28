package agent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// healthServer answers GET /v1/health with 200 while up is set, 503
// otherwise, on a real socket.
func healthServer(t *testing.T, up *atomic.Bool) (host string, port int) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/health" || !up.Load() {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	h, p, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ = strconv.Atoi(p)
	return h, port
}

func check(h spec.Health) *spec.Health {
	h.Interval, h.Timeout, h.Failures = spec.Duration(20*time.Millisecond), spec.Duration(500*time.Millisecond), 3
	return &h
}

// TestProbe runs each kind of check against real sockets and processes.
func TestProbe(t *testing.T) {
	ctx := context.Background()
	var up atomic.Bool
	host, port := healthServer(t, &up)
	httpCheck := newProber(check(spec.Health{HTTP: &spec.HTTPCheck{Path: "/v1/health"}}), host, port, t.TempDir(), nil)
	if err := httpCheck.probe(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("http check of a server not serving: %v, want a 503 failure", err)
	}
	up.Store(true)
	if err := httpCheck.probe(ctx); err != nil {
		t.Fatalf("http check of a serving server: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpPort := ln.Addr().(*net.TCPAddr).Port
	tcp := newProber(check(spec.Health{TCP: &spec.TCPCheck{}}), "127.0.0.1", tcpPort, "", nil)
	if err := tcp.probe(ctx); err != nil {
		t.Fatalf("tcp check of a listening port: %v", err)
	}
	ln.Close()
	if err := tcp.probe(ctx); err == nil {
		t.Fatal("tcp check of a closed port passed")
	}
	// The check's own port wins over the replica's.
	if err := newProber(check(spec.Health{HTTP: &spec.HTTPCheck{Path: "/v1/health", Port: port}}), host, tcpPort, "", nil).probe(ctx); err != nil {
		t.Fatalf("http check on its own port: %v", err)
	}

	dir := t.TempDir()
	ok := newProber(check(spec.Health{Exec: &spec.ExecCheck{Command: []string{"sh", "-c", `test "$PROBE_ME" = yes && test "$PWD" = "` + dir + `"`}}}), "", 0, dir, []string{"PROBE_ME=yes"})
	if err := ok.probe(ctx); err != nil {
		t.Fatalf("exec check with the replica's env and dir: %v", err)
	}
	bad := newProber(check(spec.Health{Exec: &spec.ExecCheck{Command: []string{"sh", "-c", "echo sick; exit 3"}}}), "", 0, dir, nil)
	if err := bad.probe(ctx); err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "sick") {
		t.Fatalf("failing exec check: %v, want exit status 3 with its output", err)
	}
	slow := newProber(check(spec.Health{Exec: &spec.ExecCheck{Command: []string{"sleep", "5"}}}), "", 0, dir, nil)
	start := time.Now()
	if err := slow.probe(ctx); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("exec check past its timeout: %v after %s", err, time.Since(start))
	}
}

// events records what a health loop decided, in order.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) add(s string) { e.mu.Lock(); e.got = append(e.got, s); e.mu.Unlock() }
func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

// TestHealthLoop: a replica becomes ready when its check first passes,
// loses readiness at the first failure, gets it back when the check
// passes again, and is declared unhealthy after Failures in a row; one
// still starting (never ready) is not killed.
func TestHealthLoop(t *testing.T) {
	var up atomic.Bool
	host, port := healthServer(t, &up)
	c := check(spec.Health{HTTP: &spec.HTTPCheck{Path: "/v1/health"}})
	p := newProber(c, host, port, "", nil)
	var ev events
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer close(done)
		healthLoop(ctx, c, false, p.probe, func(ok bool) { ev.add("ready=" + strconv.FormatBool(ok)) }, func(why string) { ev.add("unhealthy: " + why) })
	}()
	wait := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(ev.list()) < want {
			if time.Now().After(deadline) {
				t.Fatalf("events %q, waited for %d", ev.list(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // ten failing checks while starting
	if got := ev.list(); len(got) != 0 {
		t.Fatalf("a replica still starting got %q", got)
	}
	up.Store(true)
	wait(1)
	up.Store(false)
	wait(2)
	up.Store(true)
	wait(3)
	up.Store(false)
	wait(5)
	<-done
	got := ev.list()
	want := []string{"ready=true", "ready=false", "ready=true", "ready=false"}
	for i, w := range want {
		if got[i] != w {
			t.Fatalf("events %q, want %q then unhealthy", got, want)
		}
	}
	if !strings.HasPrefix(got[4], "unhealthy: health check failed 3 times in a row: GET http://") || !strings.Contains(got[4], "503") {
		t.Fatalf("last event %q", got[4])
	}
}

// TestHealthOf: builtin inference replicas are checked on /v1/health,
// exec ones by their spec's check, other kinds not at all.
func TestHealthOf(t *testing.T) {
	custom := &spec.Health{TCP: &spec.TCPCheck{}}
	for _, tc := range []struct {
		al   api.Allocation
		want string
	}{
		{api.Allocation{Kind: spec.KindInference, Task: spec.Task{Driver: spec.DriverBuiltin}}, "GET :0/v1/health"},
		{api.Allocation{Kind: spec.KindInference, Task: spec.Task{Driver: spec.DriverExec, Health: custom}}, "TCP :0"},
		{api.Allocation{Kind: spec.KindInference, Task: spec.Task{Driver: spec.DriverExec}}, ""},
		{api.Allocation{Kind: spec.KindFinetune, Task: spec.Task{Driver: spec.DriverBuiltin}}, ""},
	} {
		got := ""
		if h := healthOf(&tc.al); h != nil {
			got = h.String()
		}
		if got != tc.want {
			t.Errorf("%s/%s: check %q, want %q", tc.al.Kind, tc.al.Task.Driver, got, tc.want)
		}
	}
}

// TestHealthLoopReattached: a replica re-attached after an agent restart
// starts from the readiness it had; a ready one whose checks now fail
// loses its readiness at the first failure and is declared unhealthy
// after Failures in a row (a fresh one would wait to be ready first).
func TestHealthLoopReattached(t *testing.T) {
	var up atomic.Bool // never up
	host, port := healthServer(t, &up)
	c := check(spec.Health{HTTP: &spec.HTTPCheck{Path: "/v1/health"}})
	p := newProber(c, host, port, "", nil)
	var ev events
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	healthLoop(ctx, c, true, p.probe, func(ok bool) { ev.add("ready=" + strconv.FormatBool(ok)) }, func(why string) { ev.add("unhealthy") })
	if got := ev.list(); len(got) != 2 || got[0] != "ready=false" || got[1] != "unhealthy" {
		t.Fatalf("events %q, want ready=false then unhealthy", got)
	}
}

// TestHealthLoopStartupTimeout: a replica that never passes its check is
// declared unhealthy once its startup timeout has passed (without one it
// waits for ever, TestHealthLoop).
func TestHealthLoopStartupTimeout(t *testing.T) {
	var up atomic.Bool // never up
	host, port := healthServer(t, &up)
	c := check(spec.Health{HTTP: &spec.HTTPCheck{Path: "/v1/health"}, StartupTimeout: spec.Duration(100 * time.Millisecond)})
	p := newProber(c, host, port, "", nil)
	var ev events
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	healthLoop(ctx, c, false, p.probe, func(ok bool) { ev.add("ready=" + strconv.FormatBool(ok)) }, func(why string) { ev.add(why) })
	got := ev.list()
	if len(got) != 1 || !strings.Contains(got[0], "startupTimeout") || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("events %q after %s, want one startup timeout after 100ms", got, time.Since(start))
	}
}
