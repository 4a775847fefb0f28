package k8s_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The ark binary of this tree, built once: the manifests are checked
// against its flags and a running server's endpoints, not a copy of them.
var (
	buildOnce sync.Once
	arkBin    string
	buildErr  error
)

func ark(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ark-k8s-test")
		if err != nil {
			buildErr = err
			return
		}
		arkBin = filepath.Join(dir, "ark")
		out, err := exec.Command("go", "build", "-o", arkBin, "../../cmd/ark").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build ark: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return arkBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if arkBin != "" {
		os.RemoveAll(filepath.Dir(arkBin))
	}
	os.Exit(code)
}

func arkHelp(t *testing.T, sub string) string {
	t.Helper()
	out, err := exec.Command(ark(t), sub, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("ark %s --help: %v\n%s", sub, err, out)
	}
	return string(out)
}

// probeServer starts a one-server cluster on loopback (plain HTTP: the
// path and the answer are what is checked, not TLS) and returns the status
// code GET path gets once it has a leader.
func probeServer(t *testing.T, path string) int {
	t.Helper()
	httpAddr, raftAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ark(t), "server", "--name", "s1", "--data-dir", t.TempDir(),
		"--http", httpAddr, "--raft", raftAddr, "--log-level", "warn")
	out := &safeBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/v1/status/leader")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s has no leader after 20s: %v\n%s", httpAddr, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + httpAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type safeBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
