package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// nodeACLServer is a token-file server (tokenServer) without request limits.
func nodeACLServer(t *testing.T) *Server {
	t.Helper()
	none := Limits{}
	return tokenServer(t, Config{Limits: &none})
}

// twoNodes registers node x (4 GPUs), places a one-GPU job of namespace nlp
// on it, then registers node y: it returns both registrations, the job and
// its allocation (on x).
func twoNodes(t *testing.T, s *Server) (x, y *api.RegisterNodeResponse, job string, alloc *api.Allocation) {
	t.Helper()
	ctx := context.Background()
	agent, nlp := as(t, s, agentTok), as(t, s, nlpTok)
	x, err := agent.RegisterNode(ctx, fakeNode("x", 4))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nlp.SubmitJob(ctx, []byte(`{"name":"one","namespace":"nlp","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the job placed", func() bool {
		j, _, err := nlp.Job(ctx, sub.ID, 0, 0)
		if err == nil && len(j.Allocations) == 1 {
			alloc = j.Allocations[0]
		}
		return alloc != nil
	})
	if y, err = agent.RegisterNode(ctx, fakeNode("y", 0)); err != nil {
		t.Fatal(err)
	}
	if alloc.NodeID != x.ID || len(x.Secret) != 64 || len(y.Secret) != 64 || x.Secret == y.Secret {
		t.Fatalf("setup: alloc on %s (x is %s), secrets %q %q", alloc.NodeID, x.ID, x.Secret, y.Secret)
	}
	return x, y, sub.ID, alloc
}

// The attacks of issue 14 #3 with the shared agent token (which tasks could
// read), and with another node's secret: each now fails, while the node's
// own secret and management keep working.
func TestNodeSecretAttacks(t *testing.T) {
	s := nodeACLServer(t)
	ctx := context.Background()
	x, y, _, alloc := twoNodes(t, s)
	agent, mgmt := as(t, s, agentTok), as(t, s, mgmtTok)
	nodeX, nodeY := as(t, s, x.Secret), as(t, s, y.Secret)
	running := api.AllocStatusUpdate{Status: api.AllocRunning}
	failed := api.AllocStatusUpdate{Status: api.AllocFailed, Message: "forged"}
	impostorX := fakeNode("x", 8)
	impostorXID := fakeNode("x2", 8)
	impostorXID.ID = x.ID

	cases := []struct {
		name string
		call func() error
		want int
	}{
		{"agent token reads x's allocations (specs, env secrets)", func() error { _, _, err := agent.NodeAllocations(ctx, x.ID, 0, 0); return err }, 403},
		{"agent token forges the status of x's allocation", func() error { return agent.UpdateAllocStatus(ctx, alloc.ID, failed) }, 403},
		{"agent token heartbeats for x", func() error { _, err := agent.Heartbeat(ctx, x.ID); return err }, 403},
		{"agent token takes over x's name (impostor)", func() error { _, err := agent.RegisterNode(ctx, impostorX); return err }, 403},
		{"agent token takes over x's ID", func() error { _, err := agent.RegisterNode(ctx, impostorXID); return err }, 403},
		{"y's secret reads x's allocations", func() error { _, _, err := nodeY.NodeAllocations(ctx, x.ID, 0, 0); return err }, 403},
		{"y's secret forges x's allocation's status", func() error { return nodeY.UpdateAllocStatus(ctx, alloc.ID, failed) }, 403},
		{"y's secret heartbeats for x", func() error { _, err := nodeY.Heartbeat(ctx, x.ID); return err }, 403},
		{"y's secret registers x's name", func() error { _, err := nodeY.RegisterNode(ctx, impostorX); return err }, 403},
		{"x's secret submits a job", func() error { _, err := nodeX.SubmitJob(ctx, []byte(gangSpec)); return err }, 403},
		{"x's secret reads its allocations", func() error { _, _, err := nodeX.NodeAllocations(ctx, x.ID, 0, 0); return err }, 200},
		{"x's secret heartbeats", func() error { _, err := nodeX.Heartbeat(ctx, x.ID); return err }, 200},
		{"x's secret reports its allocation running", func() error { return nodeX.UpdateAllocStatus(ctx, alloc.ID, running) }, 200},
		{"management reads x's allocations", func() error { _, _, err := mgmt.NodeAllocations(ctx, x.ID, 0, 0); return err }, 200},
		{"management heartbeats for y", func() error { _, err := mgmt.Heartbeat(ctx, y.ID); return err }, 200},
		{"agent token registers a new node", func() error { _, err := agent.RegisterNode(ctx, fakeNode("z", 1)); return err }, 200},
	}
	for _, tc := range cases {
		if got := code(tc.call()); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if a, err := mgmt.Node(ctx, x.ID); err != nil || a.Name != "x" || len(a.GPUs) != 4 {
		t.Fatalf("node x after the impostors: %+v (%v)", a, err)
	}
	if allocs, _, _ := mgmt.NodeAllocations(ctx, x.ID, 0, 0); len(allocs) != 1 || allocs[0].Status != api.AllocRunning {
		t.Fatalf("x's allocation after the forgeries: %+v", allocs[0])
	}

	// Re-registering with its own secret keeps the node's ID and secret.
	again, err := nodeX.RegisterNode(ctx, fakeNode("x", 4))
	if err != nil || again.ID != x.ID || again.Secret != "" {
		t.Fatalf("x re-registers with its secret: %+v (%v)", again, err)
	}
	if _, err := nodeX.Heartbeat(ctx, x.ID); err != nil {
		t.Fatalf("x's secret after re-registering: %v", err)
	}

	// Down, the name is still x's: the agent token cannot take it, x can.
	s.markNodeDown(ctx, x.ID, time.Second)
	if _, err := agent.RegisterNode(ctx, fakeNode("x", 8)); code(err) != 403 {
		t.Errorf("agent token takes a down node's name: %v", err)
	}
	if _, err := nodeX.RegisterNode(ctx, fakeNode("x", 4)); err != nil {
		t.Fatalf("x comes back with its secret: %v", err)
	}
	if n, _ := mgmt.Node(ctx, x.ID); n.Status != api.NodeReady {
		t.Errorf("x after coming back: %s", n.Status)
	}

	// Management replaces a node's secret (an agent that lost its data dir).
	rep, err := mgmt.RegisterNode(ctx, fakeNode("x", 4))
	if err != nil || rep.ID != x.ID || rep.Secret == "" || rep.Secret == x.Secret {
		t.Fatalf("management re-registers x: %+v (%v)", rep, err)
	}
	if _, err := nodeX.Heartbeat(ctx, x.ID); code(err) != 401 {
		t.Errorf("x's replaced secret: %v, want 401", err)
	}
	if _, err := as(t, s, rep.Secret).Heartbeat(ctx, x.ID); err != nil {
		t.Errorf("x's new secret: %v", err)
	}
}

// No API answer carries a node's secret or its digest.
func TestNodeSecretNotServed(t *testing.T) {
	s := nodeACLServer(t)
	x, _, _, _ := twoNodes(t, s)
	digest := nodeSecretDigest(x.Secret)
	if n := s.store.Snapshot().Node(nil, x.ID); n.SecretDigest != digest {
		t.Fatalf("stored digest %q, want %q", n.SecretDigest, digest)
	}
	for _, path := range []string{"/v1/nodes", "/v1/nodes/" + x.ID, "/v1/nodes/x"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTPAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+mgmtTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(body), digest) || strings.Contains(string(body), x.Secret) || strings.Contains(string(body), "secretDigest") {
			t.Errorf("GET %s: %d, serves the secret or its digest:\n%s", path, resp.StatusCode, body)
		}
	}
	drained, err := as(t, s, mgmtTok).DrainNode(context.Background(), x.ID, true, time.Hour)
	if err != nil || drained.SecretDigest != "" {
		t.Errorf("drain answer carries the digest: %+v (%v)", drained, err)
	}
}

// An agent that registers again with its secret (a restart) keeps the
// operator's drain and eligibility.
func TestReregisterKeepsDrain(t *testing.T) {
	s := nodeACLServer(t)
	ctx := context.Background()
	agent, mgmt := as(t, s, agentTok), as(t, s, mgmtTok)
	a, err := agent.RegisterNode(ctx, fakeNode("a", 2))
	if err != nil {
		t.Fatal(err)
	}
	b, err := agent.RegisterNode(ctx, fakeNode("b", 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mgmt.DrainNode(ctx, a.ID, true, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := mgmt.SetNodeEligibility(ctx, b.ID, false); err != nil {
		t.Fatal(err)
	}
	for _, reg := range []*api.RegisterNodeResponse{a, b} {
		n, _ := mgmt.Node(ctx, reg.ID)
		again := fakeNode(n.Name, 2)
		again.ID = reg.ID
		if _, err := as(t, s, reg.Secret).RegisterNode(ctx, again); err != nil {
			t.Fatalf("%s registers again: %v", n.Name, err)
		}
	}
	if n, _ := mgmt.Node(ctx, a.ID); n.Drain == nil || !n.Ineligible {
		t.Errorf("a's drain after re-registering: drain %v, ineligible %v", n.Drain, n.Ineligible)
	}
	if n, _ := mgmt.Node(ctx, b.ID); !n.Ineligible {
		t.Errorf("b is eligible again after re-registering")
	}
}

// The servers fetch logs with a key of the node's own, derived from their
// management token: not a token the API accepts, and different per node.
func TestNodeLogsKey(t *testing.T) {
	s := nodeACLServer(t)
	x, y, _, _ := twoNodes(t, s)
	m := hmac.New(sha256.New, []byte(mgmtTok))
	m.Write([]byte("ark-node-logs\x00" + x.ID))
	if want := hex.EncodeToString(m.Sum(nil)); x.LogsKey != want || s.nodeLogsKey(x.ID) != want {
		t.Errorf("x's logs key %q, want %q", x.LogsKey, want)
	}
	if x.LogsKey == y.LogsKey || x.LogsKey == "" {
		t.Errorf("logs keys x %q, y %q", x.LogsKey, y.LogsKey)
	}
	if _, err := as(t, s, x.LogsKey).Nodes(context.Background()); code(err) != 401 {
		t.Errorf("the logs key as an API token: %v, want 401", err)
	}
}

// Without a token file the API stays open, but registration still hands
// out a secret, and an agent presenting it keeps it.
func TestNodeSecretWithoutACL(t *testing.T) {
	s, c := testServer(t, "")
	ctx := context.Background()
	reg, err := c.RegisterNode(ctx, fakeNode("a", 1))
	if err != nil || len(reg.Secret) != 64 || reg.LogsKey != "" {
		t.Fatalf("register: %+v (%v)", reg, err)
	}
	again := fakeNode("a", 1)
	again.ID = reg.ID
	if r2, err := as(t, s, reg.Secret).RegisterNode(ctx, again); err != nil || r2.Secret != "" || r2.ID != reg.ID {
		t.Fatalf("register with the secret: %+v (%v)", r2, err)
	}
	if _, _, err := c.NodeAllocations(ctx, reg.ID, 0, 0); err != nil {
		t.Errorf("open API: %v", err)
	}
}
