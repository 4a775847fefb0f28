package server

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/internal/pki"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestTLSClusterForwards: two servers on HTTPS and Raft over mutual TLS.
// The second joins the first (a server-to-server call with its
// certificate), then forwards an agent's registration and a user's
// submission to the leader; an agent certificate reaches the agent routes
// only, and a CLI certificate none of them.
func TestTLSClusterForwards(t *testing.T) {
	dir := t.TempDir()
	caPath, err := pki.CreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	load := func(role pki.Role, name string) *pki.Identity {
		t.Helper()
		cert, err := pki.CreateCert(dir, role, name, dir)
		if err != nil {
			t.Fatal(err)
		}
		id, err := pki.Load(pki.Files{CA: caPath, Cert: cert, Key: filepath.Join(dir, name+"-key.pem")})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	s1 := startServer(t, Config{TLS: load(pki.RoleServer, "s1")})
	s2, err := New(Config{
		Name: "s2", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Join: []string{s1.HTTPAddr()}, TLS: load(pki.RoleServer, "s2"), HeartbeatTTL: time.Minute,
		Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s2.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("s2 run: %v", err)
		}
	})
	waitFor(t, 20*time.Second, "s2 joined and sees the leader", func() bool {
		id, _ := s2.raft.Leader()
		return id == "s1"
	})

	clientOf := func(id *pki.Identity) *client.Client {
		c, err := client.New(s2.HTTPAddr()) // the follower: everything is forwarded
		if err != nil {
			t.Fatal(err)
		}
		c.SetTLS(id.HTTPClient())
		return c
	}
	agent, user := clientOf(load(pki.RoleAgent, "node-1")), clientOf(load(pki.RoleCLI, "alice"))
	if c := user.Addrs()[0]; c != "https://"+s2.HTTPAddr() {
		t.Errorf("client address %s, want https", c)
	}
	bg := context.Background()
	var reg error
	waitFor(t, 20*time.Second, "forwarded registration", func() bool {
		_, reg = agent.RegisterNode(bg, fakeNode("n1", 4))
		return reg == nil
	})
	if _, err := user.SubmitJob(bg, []byte(gangSpec)); err != nil {
		t.Fatalf("forwarded submission: %v", err)
	}
	if n := len(s1.Store().Snapshot().Nodes(nil)); n != 1 {
		t.Errorf("leader has %d nodes, want 1", n)
	}
	_, err = user.RegisterNode(bg, fakeNode("impostor", 8))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden {
		t.Errorf("cli certificate registering a node: %v, want 403", err)
	}
}
