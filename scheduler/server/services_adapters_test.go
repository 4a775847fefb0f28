package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/storage/crypt"
)

// nlpOpsPolicy may run and update nlp's services, reading nlp's storage.
const nlpOpsPolicy = `{"name":"nlp-ops","namespaces":[{"name":"nlp","capabilities":["submit","read","update"],"queues":["nlp"],` +
	`"storage":{"read":["file:///data/nlp"]}}]}`

// nlpCallerPolicy may read nlp's jobs and call its services: no update.
const nlpCallerPolicy = `{"name":"nlp-caller","namespaces":[{"name":"nlp","capabilities":["read","services"]}]}`

// replicaCall is what a test replica was asked.
type replicaCall struct {
	rank                     int
	method, path, auth, body string
}

// adapterService runs an ACL server with a cluster key, a node, and an
// nlp builtin service of two replicas that are plain HTTP servers on their
// allocated ports recording each call (a uri holding "bad" is refused as
// the builtin server refuses a checkpoint that is not an adapter). It
// returns the server, the clients of nlp-ops, nlp-caller and vision, the
// job, and the calls the replicas got.
func adapterService(t *testing.T) (s *Server, ops, reader, vision *client.Client, job *api.Job, calls func() []replicaCall) {
	t.Helper()
	raw := make([]byte, crypt.KeySize)
	rand.Read(raw)
	ck, err := NewClusterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, root, _, vision, _ := aclStateServerWith(t, Config{ClusterKey: ck})
	ctx := context.Background()
	for name, doc := range map[string]string{"nlp-ops": nlpOpsPolicy, "nlp-caller": nlpCallerPolicy} {
		if _, err := root.ACLPolicyApply(ctx, name, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	tok := func(policy string) *client.Client {
		tk, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Name: policy, Policies: []string{policy}})
		if err != nil {
			t.Fatal(err)
		}
		return as(t, s, tk.SecretID)
	}
	ops, reader = tok("nlp-ops"), tok("nlp-caller")
	if _, err := root.RegisterNode(ctx, fakeNode("a", 2)); err != nil {
		t.Fatal(err)
	}
	sub, err := ops.SubmitJob(ctx, []byte(`{"name":"srv","namespace":"nlp","queue":"nlp","kind":"inference","replicas":2,"resources":{"gpus":1},`+
		`"task":{"driver":"builtin","builtin":{"model":"gpt-tiny","base":"file:///data/nlp/base"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "both replicas placed", func() bool {
		job, _, err = root.Job(ctx, sub.ID, 0, 0)
		return err == nil && len(job.Allocations) == 2
	})
	var mu sync.Mutex
	var got []replicaCall
	for _, a := range job.Allocations {
		rank := a.Rank
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port)))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, replicaCall{rank, r.Method, r.URL.Path, r.Header.Get("Authorization"), string(b)})
			mu.Unlock()
			if strings.Contains(string(b), "bad") {
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprint(w, `{"error":{"message":"not an adapter of this base","type":"invalid_request_error"}}`)
				return
			}
			fmt.Fprint(w, `{}`)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		ready := true
		if err := root.UpdateAllocStatus(ctx, a.ID, api.AllocStatusUpdate{Status: api.AllocRunning, Ready: &ready}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "the service running", func() bool {
		job, _, err = root.Job(ctx, sub.ID, 0, 0)
		return err == nil && job.Status == api.JobRunning
	})
	return s, ops, reader, vision, job, func() []replicaCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]replicaCall(nil), got...)
	}
}

// TestServiceAdapterAttacks: a token that may call a service tried to load
// another namespace's checkpoint into it as an adapter through the
// endpoint, whose requests a replica on the servers' machine took as its
// own (loopback); and through the management route, another tenant, a
// token without the update capability and a location outside the
// namespace's storage are refused. None of them reaches a replica.
func TestServiceAdapterAttacks(t *testing.T) {
	s, ops, reader, vision, job, calls := adapterService(t)
	ctx := context.Background()
	base := "http://" + s.HTTPAddr() + "/v1/services/" + job.ID
	raw := func(c *client.Client, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steal := `{"name":"stolen","uri":"file:///data/vision/ckpt"}`
	through := []struct{ method, path, body string }{
		{"POST", "/v1/adapters", steal},
		{"POST", "/v1//adapters", steal},
		{"POST", "/v1%2Fadapters", steal},
		{"POST", "/v1/./adapters", steal},
		{"DELETE", "/v1/adapters/bard", ""},
		{"PUT", "/v1/rules", `{"rules":[]}`},
	}
	for _, tc := range through {
		if code, body := raw(reader, tc.method, tc.path, tc.body); code != http.StatusForbidden || !strings.Contains(body, "does not forward") {
			t.Errorf("%s %s through the endpoint: %d %s, want 403", tc.method, tc.path, code, body)
		}
	}
	mgmt := []struct {
		name string
		c    *client.Client
		uri  string
		want int
		msg  string
	}{
		{"another tenant", vision, "file:///data/vision/a", 404, "not found"},
		{"no update capability", reader, "file:///data/nlp/a", 403, `lacks capability "update"`},
		{"another namespace's checkpoint", ops, "file:///data/vision/ckpt", 403,
			`uri: namespace "nlp" may not read "file:///data/vision/ckpt" (policy nlp-ops allows reading: file:///data/nlp)`},
		{"dot-dot traversal", ops, "file:///data/nlp/../vision/ckpt", 403, "traversal is refused"},
		{"a sibling prefix", ops, "file:///data/nlp2/a", 403, `may not read "file:///data/nlp2/a"`},
		{"an unknown catalog model", ops, "model://nope", 400, `"model://nope"`},
	}
	for _, tc := range mgmt {
		_, err := tc.c.AddServiceAdapter(ctx, job.ID, api.ServiceAdapterRequest{Name: "x", URI: tc.uri})
		if code(err) != tc.want || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s: %d %v, want %d %q", tc.name, code(err), err, tc.want, tc.msg)
		}
	}
	if _, err := reader.RemoveServiceAdapter(ctx, job.ID, "x"); code(err) != 403 {
		t.Errorf("remove without update: %v, want 403", err)
	}
	if c := calls(); len(c) != 0 {
		t.Errorf("refused requests reached the replicas: %+v", c)
	}
	// Reads of a builtin replica still go through.
	if code, body := raw(reader, "GET", "/v1/adapters", ""); code != 200 {
		t.Errorf("GET /v1/adapters through the endpoint: %d %s", code, body)
	}
}

// TestServiceAdapterManage: the update capability loads an adapter of its
// namespace's storage into every ready replica with the token the
// replicas' task derives from the namespace key it holds, and removes it;
// a replica's refusal comes back with its status and message.
func TestServiceAdapterManage(t *testing.T) {
	s, ops, _, _, job, calls := adapterService(t)
	ctx := context.Background()
	// The token the replicas' task derives: from the key its agent gets.
	snap := s.store.Snapshot()
	keyed, err := s.withCheckpointKeys(snap, snap.AllocsByJob(nil, job.ID))
	if err != nil || keyed[0].CheckpointKey == nil {
		t.Fatalf("no checkpoint key for the replica: %v", err)
	}
	k, err := crypt.NewKey(keyed[0].CheckpointKey.ID, keyed[0].CheckpointKey.Key)
	if err != nil {
		t.Fatal(err)
	}
	wantAuth := "Bearer " + crypt.ServiceAdminToken(k, job.ID)

	ans, err := ops.AddServiceAdapter(ctx, job.ID, api.ServiceAdapterRequest{Name: "legal", URI: "file:///data/nlp/adapters/legal", Pinned: true})
	if err != nil || ans.Name != "legal" || len(ans.Replicas) != 2 || ans.Replicas[0].Status != 200 || ans.Replicas[1].Status != 200 {
		t.Fatalf("add: %+v %v", ans, err)
	}
	got := calls()
	if len(got) != 2 {
		t.Fatalf("replicas got %+v, want one call each", got)
	}
	ranks := map[int]bool{}
	for _, c := range got {
		ranks[c.rank] = true
		var body map[string]any
		_ = json.Unmarshal([]byte(c.body), &body)
		if c.method != "POST" || c.path != "/v1/adapters" || c.auth != wantAuth ||
			body["name"] != "legal" || body["uri"] != "file:///data/nlp/adapters/legal" || body["pinned"] != true {
			t.Errorf("replica %d got %+v, want POST /v1/adapters with %q", c.rank, c, wantAuth)
		}
	}
	if len(ranks) != 2 {
		t.Errorf("calls went to ranks %v, want both", ranks)
	}
	_, err = ops.AddServiceAdapter(ctx, job.ID, api.ServiceAdapterRequest{Name: "odd", URI: "file:///data/nlp/bad"})
	if code(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "2 of 2 replicas refused: replica 0: not an adapter of this base") {
		t.Errorf("a replica's refusal: %v", err)
	}
	if _, err := ops.AddServiceAdapter(ctx, job.ID, api.ServiceAdapterRequest{Name: "bad name!", URI: "file:///data/nlp/a"}); code(err) != 400 || !strings.Contains(err.Error(), "name:") {
		t.Errorf("a bad name: %v", err)
	}
	if _, err := ops.RemoveServiceAdapter(ctx, job.ID, "legal"); err != nil {
		t.Fatal(err)
	}
	got = calls()
	if last := got[len(got)-1]; last.method != "DELETE" || last.path != "/v1/adapters/legal" || last.auth != wantAuth {
		t.Errorf("remove: %+v", last)
	}
}
