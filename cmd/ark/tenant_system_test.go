package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/pki"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestSystemTenantAttacks replays, against real server and agent processes
// with TLS, a token file and ACL policies, the attacks of a tenant (and of
// a stranger on the network) that once worked, and checks each now fails.
// In-process tests cover each more closely; this proves they hold in the
// binary as an operator runs it.
func TestSystemTenantAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	dir := t.TempDir()
	mk := func(args ...string) string {
		t.Helper()
		out, err := cliEnv(t, nil, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}
	mk("tls", "ca", "create", "--out", dir)
	mk("tls", "cert", "create", "--ca-dir", dir, "--server", "--name", "s1", "--out", dir)
	mk("tls", "cert", "create", "--ca-dir", dir, "--agent", "--name", "gpu-a", "--out", dir)
	mk("tls", "cert", "create", "--ca-dir", dir, "--cli", "--name", "ops", "--out", dir)
	ca := filepath.Join(dir, pki.CAFile)
	tlsFlags := func(name string) []string {
		return []string{"--tls-ca", ca, "--tls-cert", filepath.Join(dir, name+".pem"), "--tls-key", filepath.Join(dir, name+"-key.pem")}
	}
	const mgmtTok, agentTok = "mgmt-tenant-test-0123456789", "agent-tenant-test-0123456789"
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(mgmtTok+" management\n"+agentTok+" agent\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Attack: Raft bound to the network without TLS. Refused at start.
	s := newSrv(t)
	wild := fmt.Sprintf("0.0.0.0:%d", freePort(t))
	if out, err := cliEnv(t, nil, "server", "--name", "s0", "--data-dir", t.TempDir(), "--http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--raft", wild); err == nil || !strings.Contains(out+err.Error(), "insecure-raft") {
		t.Errorf("plain raft on %s: %v, want a refusal naming --insecure-raft", wild, err)
	}
	start(t, append([]string{"server", "--name", "s1", "--data-dir", s.dir, "--http", s.http, "--raft", s.raft, "--token-file", tokens, "--log-level", "warn"}, tlsFlags("s1")...)...)
	ops := []string{"ARK_ADDR=" + s.http, "ARK_TLS_CA=" + ca, "ARK_TLS_CERT=" + filepath.Join(dir, "ops.pem"), "ARK_TLS_KEY=" + filepath.Join(dir, "ops-key.pem")}
	mgmt := append(ops[:len(ops):len(ops)], "ARK_TOKEN="+mgmtTok)
	waitUntil(t, 20*time.Second, "server leader over https", func() bool {
		_, err := cliEnv(t, mgmt, "node", "list")
		return err == nil
	})

	// Attack: one forged AppendEntries on the Raft port. The handshake
	// drops a peer without a server certificate before Raft reads a byte.
	if c, err := net.DialTimeout("tcp", s.raft, 5*time.Second); err == nil {
		_, _ = c.Write([]byte{0, 0x85, 0xa4, 'T', 'e', 'r', 'm', 0xcd, 0xff, 0xff})
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 64)
		n, _ := c.Read(b)
		c.Close()
		if n > 0 && b[0] != 0x15 { // a TLS alert is all it may get back
			t.Errorf("plain bytes on the raft port got an answer %q", b[:n])
		}
	}

	// The agent gets its token by environment, as the systemd unit gives
	// it; tasks must not see it.
	startEnv(t, []string{"ARK_TOKEN=" + agentTok}, append([]string{"agent", "--name", "gpu-a", "--servers", s.http, "--data-dir", t.TempDir(), "--fake-gpus", "2xH200:141Gi", "--log-level", "warn"}, tlsFlags("gpu-a")...)...)
	waitUntil(t, 20*time.Second, "agent ready", func() bool {
		out, err := cliEnv(t, mgmt, "node", "list", "-o", "json")
		return err == nil && strings.Contains(out, `"status": "ready"`)
	})

	// A tenant with an ACL token: namespace nlp, queue default, priority
	// up to 100.
	mk2 := func(env []string, args ...string) string {
		t.Helper()
		out, err := cliEnv(t, env, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}
	mk2(mgmt, "acl", "bootstrap")
	policy := filepath.Join(dir, "nlp.yaml")
	if err := os.WriteFile(policy, []byte("name: nlp-team\nnamespaces:\n- name: nlp\n  capabilities: [submit, read, cancel, logs]\n  queues: [default]\n  maxPriority: 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mk2(mgmt, "acl", "policy", "apply", "nlp-team", policy)
	m := regexp.MustCompile(`Secret ID +(\S+)`).FindStringSubmatch(mk2(mgmt, "acl", "token", "create", "--policy", "nlp-team"))
	if m == nil {
		t.Fatal("no secret in ark acl token create's output")
	}
	tenantTok := m[1]
	tenant := append(ops[:len(ops):len(ops)], "ARK_TOKEN="+tenantTok)

	job := func(extra, script string) string {
		return fmt.Sprintf("name: probe\nnamespace: nlp\nkind: batch\n%sresources: {gpus: 1, cpu: 100m, memory: 64Mi}\ntask: {driver: exec, exec: {command: [sh, -c, %q]}}\n", extra, script)
	}
	submit := func(env []string, body string, wait bool) (string, error) {
		spec := filepath.Join(t.TempDir(), "job.yaml")
		if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"job", "submit", spec}
		if wait {
			args = []string{"job", "submit", "--wait", "--timeout", "90s", spec}
		}
		return cliEnv(t, env, args...)
	}

	// Attacks: tenant code running as root, reading /etc/shadow and the
	// agent's files, finding the agent's token in its environment.
	probe := `id -u; cat /etc/shadow >/dev/null 2>&1; echo shadow=$?; env; echo done`
	if out, err := submit(tenant, job("", probe), true); err != nil {
		t.Fatalf("the probe job: %v\n%s", err, out)
	}
	jobs := mk2(tenant, "job", "list", "-o", "json")
	id := regexp.MustCompile(`"id": "(probe-[0-9a-f]+)"`).FindStringSubmatch(jobs)
	if id == nil {
		t.Fatalf("no probe job in %s", jobs)
	}
	logs := mk2(tenant, "job", "logs", id[1])
	first, _, _ := strings.Cut(logs, "\n")
	if strings.TrimSpace(first) == "0" {
		t.Errorf("the task ran as root")
	}
	if !strings.Contains(logs, "shadow=1") {
		t.Errorf("the task could read /etc/shadow:\n%s", logs)
	}
	for _, secret := range []string{agentTok, mgmtTok, "ARK_TOKEN="} {
		if strings.Contains(logs, secret) {
			t.Errorf("the task's environment holds %.10s...", secret)
		}
	}

	// Attack: workDir outside the allocation (root escalation by chown).
	bad := strings.Replace(job("", "true"), "driver: exec, exec: {", "driver: exec, exec: {workDir: /etc, ", 1)
	if _, err := submit(tenant, bad, false); exitCodeOf(err) != exitUsage || !strings.Contains(err.Error(), "workDir") {
		t.Errorf("workDir /etc: %v, want exit %d naming workDir", err, exitUsage)
	}

	// Attacks: another team's queue, a priority that evicts others.
	for name, extra := range map[string]string{"queue research": "queue: research\n", "priority 1000": "priority: 1000\n"} {
		if _, err := submit(tenant, job(extra, "true"), false); exitCodeOf(err) != exitFailure || !strings.Contains(err.Error(), "nlp-team") {
			t.Errorf("%s: %v, want a refusal naming the policy", name, err)
		}
	}

	// Attack: the agent token read every tenant's specs and env secrets
	// from a node's allocations. Now only the node's own secret does.
	agentID, err := pki.Load(pki.Files{CA: ca, Cert: filepath.Join(dir, "gpu-a.pem"), Key: filepath.Join(dir, "gpu-a-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	ac.SetTLS(agentID.HTTPClient())
	ac.Token = agentTok
	ctx := context.Background()
	nodes, err := ac.Nodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes: %v", err)
	}
	var ae *client.APIError
	if _, _, err := ac.NodeAllocations(ctx, nodes[0].ID, 0, 0); !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden {
		t.Errorf("the agent token read a node's allocations: %v, want 403", err)
	}

	// Attack: a stranger trickling a body without a token held
	// connections open. Now it gets 401 and the connection is closed.
	conn, err := tls.Dial("tcp", s.http, &tls.Config{RootCAs: agentID.HTTPClient().RootCAs, ServerName: pki.ServerName})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /v1/jobs HTTP/1.1\r\nHost: ark\r\nContent-Length: 100000\r\n\r\n{")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("trickled body without a token: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !resp.Close {
		t.Errorf("the 401 did not say Connection: close")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Errorf("the connection stayed open after the 401")
	}

	// Every write above is in the audit log; the chain verifies; no secret.
	auditLog := filepath.Join(s.dir, "audit.log")
	if out, err := cliEnv(t, nil, "operator", "audit", "verify", auditLog); err != nil || !strings.Contains(out, "the chain verifies") {
		t.Errorf("audit verify: %v %s", err, out)
	}
	data, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{tenantTok, mgmtTok, agentTok} {
		if strings.Contains(string(data), secret) {
			t.Errorf("a secret is in the audit log")
		}
	}
	if !strings.Contains(string(data), `"outcome":"denied"`) {
		t.Errorf("the refused submissions are not in the audit log")
	}
}
