package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/pki"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// cliEnv runs a client command with extra environment variables and
// returns its stdout.
func cliEnv(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, arkBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ark %s: %w\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// TestSystemTLS: a CA and certificates made with the CLI; a server and an
// agent on HTTPS (Raft over mutual TLS); a job submitted through the CLI
// with the ARK_TLS_* variables runs to success; a plain-HTTP client and a
// client without a certificate on the agents' routes are refused.
func TestSystemTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	dir := t.TempDir()
	mk := func(args ...string) {
		t.Helper()
		if out, err := cliEnv(t, nil, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	mk("tls", "ca", "create", "--out", dir)
	mk("tls", "cert", "create", "--ca-dir", dir, "--server", "--name", "s1", "--out", dir)
	mk("tls", "cert", "create", "--ca-dir", dir, "--agent", "--name", "gpu-a", "--out", dir)
	mk("tls", "cert", "create", "--ca-dir", dir, "--cli", "--name", "alice", "--out", dir)
	for _, k := range []string{pki.CAKeyFile, "s1-key.pem", "gpu-a-key.pem", "alice-key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, k))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v, want 0600", k, err, fi.Mode())
		}
	}
	if _, err := cliEnv(t, nil, "tls", "ca", "create", "--out", dir); err == nil {
		t.Error("a second ca create overwrote the CA")
	}
	ca := filepath.Join(dir, pki.CAFile)
	flags := func(name string) []string {
		return []string{"--tls-ca", ca, "--tls-cert", filepath.Join(dir, name+".pem"), "--tls-key", filepath.Join(dir, name+"-key.pem")}
	}

	s := newSrv(t)
	start(t, append([]string{"server", "--name", "s1", "--data-dir", s.dir, "--http", s.http, "--raft", s.raft, "--log-level", "warn"}, flags("s1")...)...)
	alice, err := pki.Load(pki.Files{CA: ca, Cert: filepath.Join(dir, "alice.pem"), Key: filepath.Join(dir, "alice-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTLS(alice.HTTPClient())
	waitUntil(t, 15*time.Second, "server leader over https", func() bool {
		l, err := c.Leader(context.Background())
		return err == nil && l.Leader == "s1"
	})

	// An agent needs a certificate: with only the CA it does not start.
	if _, err := cliEnv(t, nil, "agent", "--name", "x", "--servers", s.http, "--data-dir", t.TempDir(), "--tls-ca", ca); exitCodeOf(err) != exitUsage {
		t.Errorf("agent without a certificate: %v, want exit %d", err, exitUsage)
	}
	start(t, append([]string{"agent", "--name", "gpu-a", "--servers", s.http, "--data-dir", t.TempDir(), "--fake-gpus", "2xH200:141Gi", "--log-level", "warn"}, flags("gpu-a")...)...)
	waitUntil(t, 20*time.Second, "agent registered over https", func() bool {
		nodes, err := c.Nodes(context.Background())
		return err == nil && len(nodes) == 1 && nodes[0].Status == "ready"
	})

	spec := filepath.Join(t.TempDir(), "hello.yaml")
	if err := os.WriteFile(spec, []byte("name: hello-tls\nkind: batch\nresources: {gpus: 1, cpu: 100m, memory: 64Mi}\n"+
		"task: {driver: exec, exec: {command: [sh, -c, 'echo hello over tls']}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"ARK_ADDR=" + s.http, "ARK_TLS_CA=" + ca, "ARK_TLS_CERT=" + filepath.Join(dir, "alice.pem"), "ARK_TLS_KEY=" + filepath.Join(dir, "alice-key.pem")}
	out, err := cliEnv(t, env, "job", "submit", "--wait", "--timeout", "60s", "-o", "json", spec)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var job api.Job
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if job.Status != api.JobSucceeded {
		t.Fatalf("job %s: %s", job.Status, job.Reason)
	}
	if logs, err := cliEnv(t, env, "job", "logs", job.ID); err != nil || !strings.Contains(logs, "hello over tls") {
		t.Errorf("logs over tls: %v %q", err, logs)
	}

	// Plain HTTP: the server speaks only TLS; the CLI without the TLS
	// variables gets nothing.
	if resp, err := http.Get("http://" + s.http + "/v1/status/leader"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), `"leader"`) {
			t.Errorf("plain http answered %d %s", resp.StatusCode, b)
		}
	}
	if out, err := cliEnv(t, []string{"ARK_ADDR=http://" + s.http}, "job", "list", "-o", "json"); err == nil {
		t.Errorf("plain-http cli listed jobs: %s", out)
	}
	// A client that does not trust the cluster CA refuses the server.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + s.http + "/v1/status/leader"); err == nil {
		t.Error("a client without the CA trusted the server")
	}

	// HTTPS without a client certificate: a CLI user with a token may read
	// and submit, but the agents' routes refuse it (no impostor agents).
	anon, err := pki.Load(pki.Files{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: anon.HTTPClient()}}
	call := func(h *http.Client, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+s.http+path, strings.NewReader(body))
		resp, err := h.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call(hc, "GET", "/v1/status/leader", ""); code != http.StatusOK {
		t.Errorf("cert-less https leader: %d, want 200", code)
	}
	nodes, _ := c.Nodes(context.Background())
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/nodes/register"},
		{"PUT", "/v1/nodes/" + nodes[0].ID + "/heartbeat"},
		{"GET", "/v1/nodes/" + nodes[0].ID + "/allocations"},
		{"PUT", "/v1/allocations/" + job.Allocations[0].ID + "/status"},
	} {
		if code := call(hc, r.method, r.path, "{}"); code != http.StatusForbidden {
			t.Errorf("cert-less %s %s: %d, want 403", r.method, r.path, code)
		}
	}
	// A CLI certificate is no agent's either.
	cliTLS := alice.HTTPClient()
	if code := call(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cliTLS}}, "POST", "/v1/nodes/register", "{}"); code != http.StatusForbidden {
		t.Errorf("cli certificate on register: %d, want 403", code)
	}
	// Nor may a client pose as a server forwarding a request.
	req, _ := http.NewRequest("GET", "https://"+s.http+"/v1/jobs", nil)
	req.Header.Set("X-Ark-Forwarded-By", "s2")
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged forward: %v %v, want 403", resp, err)
	}
	// TLS 1.3 is what two Ark processes negotiate.
	conn, err := tls.Dial("tcp", s.http, anon.HTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated TLS version %#x, want 1.3", v)
	}
	conn.Close()
}
