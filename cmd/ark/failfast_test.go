package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/testenv"
)

// The CLI fails fast and says what to do (issue 19): a wrong address, the
// Raft port given as --addr, a busy dev port, and a --wait cut short.

// runArk runs the ark binary and returns its exit code, combined output
// and how long it took.
func runArk(t *testing.T, args ...string) (int, string, time.Duration) {
	t.Helper()
	began := time.Now()
	out, err := exec.Command(arkBin, args...).CombinedOutput()
	return exitCodeOf(err), string(out), time.Since(began)
}

// TestFailFastUnreachable: an address with nothing listening, or a host
// that does not resolve, fails within about a second with what to check,
// not after RetryFor with Go's dial error.
func TestFailFastUnreachable(t *testing.T) {
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	closed2 := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cases := []struct {
		name, addr string
		want       []string
	}{
		{"closed port", closed, []string{"no Ark server at http://" + closed + ": connection refused", "is `ark server` or `ark dev` running? (--addr / ARK_ADDR)"}},
		{"every address closed", closed + "," + closed2, []string{"no Ark server at http://" + closed + ", http://" + closed2 + ": connection refused"}},
		{"unknown host", "no-such-host.invalid:4680", []string{"no Ark server at http://no-such-host.invalid:4680: no such host", "(--addr / ARK_ADDR)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, took := runArk(t, "job", "list", "--addr", tc.addr)
			if code != exitFailure {
				t.Errorf("exit %d, want %d: %s", code, exitFailure, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
			if limit := testenv.Scale(3 * time.Second); took > limit {
				t.Errorf("took %s to fail, want under %s", took, limit)
			}
		})
	}
}

// TestFailFastServer runs the cases that need a server (and no agents: a
// job that fits stays pending).
func TestFailFastServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s := newSrv(t)
	p := s.start(t)
	spec := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(spec, []byte("name: waits\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("raft port as addr", func(t *testing.T) {
		for range 3 {
			code, out, took := runArk(t, "job", "list", "--addr", s.raft)
			if code != exitUsage || !strings.Contains(out, "this is the Raft port") || !strings.Contains(out, "http://"+s.http) {
				t.Errorf("exit %d, output %q: want exit %d naming the API at http://%s", code, out, exitUsage, s.http)
			}
			if limit := testenv.Scale(3 * time.Second); took > limit {
				t.Errorf("took %s, want under %s", took, limit)
			}
		}
		log, _ := os.ReadFile(p.out)
		if strings.Contains(string(log), "unknown rpc type") {
			t.Errorf("the server logged raft decode errors:\n%s", log)
		}
		if n := strings.Count(string(log), "an HTTP request reached the raft port"); n != 1 {
			t.Errorf("the server logged the stray requests %d times, want once:\n%s", n, log)
		}
	})

	t.Run("timeout says what keeps going", func(t *testing.T) {
		code, out, _ := runArk(t, "job", "submit", spec, "--wait", "--timeout", "1s", "--addr", s.http)
		if code != exitFailure {
			t.Errorf("exit %d, want %d: %s", code, exitFailure, out)
		}
		for _, w := range []string{"gave up waiting for job waits-", "after --timeout 1s", "it is still pending", "ark job cancel waits-"} {
			if !strings.Contains(out, w) {
				t.Errorf("output %q lacks %q", out, w)
			}
		}
	})

	t.Run("ctrl-c detaches", func(t *testing.T) {
		cmd := exec.Command(arkBin, "job", "submit", spec, "--wait", "--addr", s.http)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 15*time.Second, "the job's status line", func() bool { return strings.Contains(out.String(), "pending") })
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		text := out.String()
		if code := exitCodeOf(err); code != 130 {
			t.Errorf("exit %d, want 130: %s", code, text)
		}
		id := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(text, "\n", 2)[0], "submitted "))
		want := fmt.Sprintf("detached; job %s keeps running (ark job cancel %s to stop it)", id, id)
		if !strings.HasPrefix(id, "waits-") || !strings.Contains(text, want) {
			t.Errorf("output %q lacks %q", text, want)
		}
		if st, err := cli(t, s.http, "job", "status", id); err != nil || !strings.Contains(st, "pending") {
			t.Errorf("the job after detaching: %v\n%s", err, st)
		}
	})

	// From here on the cluster has one node with one GPU.
	startAgents(t, s.http, "1xH200:141Gi", []string{"a"})
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("name: big\nkind: batch\nresources: {gpus: 4}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("cannot fit returns at once", func(t *testing.T) {
		code, out, took := runArk(t, "job", "submit", big, "--wait", "--addr", s.http)
		if code != exitFailure {
			t.Errorf("exit %d, want %d: %s", code, exitFailure, out)
		}
		for _, w := range []string{"cannot fit on this cluster", "the largest ready node has 1", "it stays pending", "--wait-pending"} {
			if !strings.Contains(out, w) {
				t.Errorf("output %q lacks %q", out, w)
			}
		}
		if limit := testenv.Scale(10 * time.Second); took > limit {
			t.Errorf("took %s, want under %s", took, limit)
		}
	})

	t.Run("wait-pending keeps waiting", func(t *testing.T) {
		code, out, _ := runArk(t, "job", "submit", big, "--wait", "--wait-pending", "--timeout", "2s", "--addr", s.http)
		if code != exitFailure || !strings.Contains(out, "gave up waiting for job big-") || !strings.Contains(out, "it is still pending") {
			t.Errorf("exit %d, output %q: want the timeout, not the cannot-fit return", code, out)
		}
	})

	t.Run("a job that fits is followed to its end", func(t *testing.T) {
		if code, out, _ := runArk(t, "job", "submit", spec, "--wait", "--timeout", "60s", "--addr", s.http); code != exitOK || !strings.Contains(out, "succeeded") {
			t.Errorf("exit %d, output %q", code, out)
		}
	})
}

// TestFailFastDevBusyPort: ark dev on a taken port names the port and the
// flag that moves it, for the API port and for Raft's (the next one).
func TestFailFastDevBusyPort(t *testing.T) {
	for _, tc := range []struct {
		name string
		busy int // offset from the --http port of the port held
		want string
	}{
		{"http", 0, "the HTTP API port (--http) 127.0.0.1:%d is already in use"},
		{"raft", 1, "the Raft port (the --http port + 1) 127.0.0.1:%d is already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Both ports reserved: the one held here must not be
			// another test's (they run in parallel).
			port := freeDevPort(t)
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+tc.busy))
			if err != nil {
				t.Skipf("cannot hold the port: %v", err)
			}
			defer ln.Close()
			code, out, _ := runArk(t, "dev", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", t.TempDir())
			want := fmt.Sprintf(tc.want, port+tc.busy)
			if code != exitFailure || !strings.Contains(out, want) || !strings.Contains(out, "--http HOST:PORT") {
				t.Errorf("exit %d, output %q: want exit %d with %q and the flag", code, out, exitFailure, want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer a process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
