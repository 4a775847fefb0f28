package agent

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/internal/pki"
)

// The tasks' report listener comes back on the same port after a restart,
// so tasks the agent re-attaches to still reach their ARK_AGENT_ADDR.
func TestListenReportsKeepsPort(t *testing.T) {
	dir := t.TempDir()
	ln, err := listenReports(dir)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ln, err = listenReports(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() != addr || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("after a restart the report listener is at %s, want %s on loopback", ln.Addr(), addr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "report-port")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("report-port: %v %v", fi, err)
	}
}

// Under TLS the agent's public listener takes only a server of the cluster
// (logs), and tasks report on loopback: an attacker on the network without
// a server certificate gets nothing, not even a route.
func TestTLSListeners(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	ids := map[pki.Role]*pki.Identity{}
	for _, r := range []pki.Role{pki.RoleServer, pki.RoleAgent, pki.RoleCLI} {
		name := "n-" + r.String()
		if _, err := pki.CreateCert(dir, r, name, dir); err != nil {
			t.Fatal(err)
		}
		id, err := pki.Load(pki.Files{CA: filepath.Join(dir, "ark-ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")})
		if err != nil {
			t.Fatal(err)
		}
		ids[r] = id
	}
	serve, err := ids[pki.RoleAgent].AgentServer()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reportLn, err := listenReports(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: Config{Name: "n1", ServeTLS: serve}, log: zaptest.NewLogger(t), ln: tls.NewListener(raw, serve), reportLn: reportLn, tasks: map[string]*task{}}
	for _, l := range a.listeners() {
		srv := newAgentHTTP(l.handler)
		go func() { _ = srv.Serve(l.ln) }()
		defer srv.Close()
	}
	public := "https://" + raw.Addr().String()
	get := func(cfg *tls.Config, method, url string) (int, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	logs := public + "/v1/allocations/x-0-abcd/logs"
	// A server gets through the handshake (the alloc is unknown: 404).
	if code, err := get(ids[pki.RoleServer].AgentClient(), "GET", logs); err != nil || code != http.StatusNotFound {
		t.Errorf("a server: %d %v, want 404 past the handshake", code, err)
	}
	// Anyone else is stopped at the handshake.
	noCert := ids[pki.RoleServer].AgentClient()
	noCert.Certificates = nil
	for name, cfg := range map[string]*tls.Config{"a CLI certificate": ids[pki.RoleCLI].AgentClient(), "an agent certificate": ids[pki.RoleAgent].AgentClient(), "no certificate": noCert} {
		code, err := get(cfg, "GET", logs)
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: %d %v, want a handshake failure", name, code, err)
		}
	}
	// Plain HTTP on the public port does not reach a handler either.
	if code, err := get(nil, "GET", "http://"+raw.Addr().String()+"/v1/allocations/x-0-abcd/logs"); err == nil && code != http.StatusBadRequest {
		t.Errorf("plain http: %d", code)
	}
	// Reports: not on the public listener; on loopback they need the task token.
	if code, err := get(ids[pki.RoleServer].AgentClient(), "POST", public+"/v1/allocations/x-0-abcd/report"); err != nil || code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		t.Errorf("a report on the public listener: %d %v, want no such route", code, err)
	}
	if code, err := get(nil, "POST", "http://"+a.reportAddr()+"/v1/allocations/x-0-abcd/report"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("a report without its task token on loopback: %d %v, want 401", code, err)
	}
}
