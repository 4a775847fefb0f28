package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api/client"
)

// testServer starts a single-voter server on ephemeral loopback ports. Its
// heartbeat TTL is long, so that nodes the tests register (and never
// heartbeat) stay ready however slow the machine.
func testServer(t *testing.T, dir string) (*Server, *client.Client) {
	return testServerTTL(t, dir, time.Minute)
}

func testServerTTL(t *testing.T, dir string, ttl time.Duration) (*Server, *client.Client) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s := startServer(t, Config{DataDir: dir, HeartbeatTTL: ttl})
	c, err := client.New(s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// startServer runs a single-voter server with cfg on ephemeral loopback
// ports (name, ports, bootstrap, logger and a temporary data dir filled in
// when unset) until the test ends, and waits for it to lead.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Name, cfg.HTTPAddr, cfg.RaftAddr, cfg.Bootstrap = "s1", "127.0.0.1:0", "127.0.0.1:0", true
	cfg.Logger = zaptest.NewLogger(t)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.HeartbeatTTL == 0 {
		cfg.HeartbeatTTL = time.Minute
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "leader", s.IsLeader)
	return s
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const visionTok = "vision-0123456789abcdef"

// tokenServer is startServer with a token file of four tokens: management
// (mgmtTok), agent (agentTok) and the tenants nlp (nlpTok) and vision
// (visionTok). cfg's ACL is set from it.
func tokenServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tokens")
	body := mgmtTok + " management\n" + agentTok + " agent\n" + nlpTok + " namespace:nlp\n" + visionTok + " namespace:vision\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ACL = acl
	return startServer(t, cfg)
}
