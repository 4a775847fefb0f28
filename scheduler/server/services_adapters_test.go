package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/spec"
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

// replicaAdapterLists are what adapterService's replicas answer to GET
// /v1/adapters, by rank: legal loaded on rank 0; on rank 1, legal still
// loading and med failed, as the builtin server lists them.
var replicaAdapterLists = map[int]string{
	0: `{"object":"list","data":[{"name":"legal","uri":"file:///data/nlp/adapters/legal","tier":"host","rank":8}]}`,
	1: `{"object":"list","data":[{"name":"legal","uri":"file:///data/nlp/adapters/legal","tier":"loading"},` +
		`{"name":"med","uri":"file:///data/nlp/adapters/med","tier":"failed","error":"not an adapter of this base: trained on base file:///x"}]}`,
}

// adapterService runs an ACL server without a cluster key, a node, and an
// nlp builtin service of two replicas that are plain HTTP servers on their
// allocated ports recording each call (a uri holding "bad" is refused as
// the builtin server refuses a checkpoint that is not an adapter; GET
// /v1/adapters answers replicaAdapterLists). It
// returns the server, the clients of nlp-ops, nlp-caller and vision, the
// job, and the calls the replicas got.
func adapterService(t *testing.T) (s *Server, ops, reader, vision *client.Client, job *api.Job, calls func() []replicaCall) {
	t.Helper()
	s, root, _, vision, _ := aclStateServerWith(t, Config{}) // no cluster key: none is needed
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
			if r.Method == http.MethodGet && r.URL.Path == "/v1/adapters" {
				fmt.Fprint(w, replicaAdapterLists[rank])
				return
			}
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
	if j, _, err := ops.Job(ctx, job.ID, 0, 0); err != nil || j.Version != job.Version || len(j.Spec.Task.Builtin.Adapters) != 0 {
		t.Errorf("refused requests changed the job: %v %+v", err, j)
	}
	// Reads of a builtin replica still go through.
	if code, body := raw(reader, "GET", "/v1/adapters", ""); code != 200 {
		t.Errorf("GET /v1/adapters through the endpoint: %d %s", code, body)
	}
}

// TestServiceAdapterManage: the update capability adds an adapter of its
// namespace's storage to the service's spec and removes it, each a new
// version of the job (listed in its history) that the serving replicas
// take in place: their allocations stay, now at the new version with the
// new adapter list in their task (what their agents tell them). No
// cluster key is needed and no call reaches a replica.
func TestServiceAdapterManage(t *testing.T) {
	_, ops, _, _, job, calls := adapterService(t)
	ctx := context.Background()
	check := func(step string, version int, adapters []spec.Adapter) {
		t.Helper()
		j, _, err := ops.Job(ctx, job.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if j.Version != version || !slices.Equal(j.Spec.Task.Builtin.Adapters, adapters) {
			t.Errorf("%s: version %d adapters %+v, want %d %+v", step, j.Version, j.Spec.Task.Builtin.Adapters, version, adapters)
		}
		if len(j.Allocations) != 2 {
			t.Fatalf("%s: %d allocations", step, len(j.Allocations))
		}
		for k, a := range j.Allocations {
			if a.ID != job.Allocations[k].ID || a.JobVersion != version || !a.Serving() || !slices.Equal(a.Task.Builtin.Adapters, adapters) {
				t.Errorf("%s: replica %s (was %s) at version %d serving %v with %+v, want the same replica in place",
					step, a.ID, job.Allocations[k].ID, a.JobVersion, a.Serving(), a.Task.Builtin.Adapters)
			}
		}
	}
	legal := spec.Adapter{Name: "legal", URI: "file:///data/nlp/adapters/legal", Pinned: true}
	ans, err := ops.AddServiceAdapter(ctx, job.ID, api.ServiceAdapterRequest{Name: legal.Name, URI: legal.URI, Pinned: true})
	if err != nil || ans.Name != "legal" || ans.Version != 1 || !ans.Changed || ans.InPlace != 2 {
		t.Fatalf("add: %+v %v", ans, err)
	}
	check("add", 1, []spec.Adapter{legal})
	// Again: already so, nothing committed.
	if ans, err := ops.AddServiceAdapter(ctx, job.ID, api.ServiceAdapterRequest{Name: legal.Name, URI: legal.URI, Pinned: true}); err != nil || ans.Changed || ans.Version != 1 {
		t.Errorf("add again: %+v %v, want unchanged at version 1", ans, err)
	}
	med := spec.Adapter{Name: "med", URI: "file:///data/nlp/adapters/med"}
	if _, err := ops.AddServiceAdapter(ctx, job.ID, api.ServiceAdapterRequest{Name: med.Name, URI: med.URI}); err != nil {
		t.Fatal(err)
	}
	check("second add", 2, []spec.Adapter{legal, med})
	refused := []struct {
		name string
		req  api.ServiceAdapterRequest
		want int
		msg  string
	}{
		{"another checkpoint under a served name", api.ServiceAdapterRequest{Name: "legal", URI: "file:///data/nlp/other"}, 409, "already serves adapter \"legal\""},
		{"a bad name", api.ServiceAdapterRequest{Name: "bad name!", URI: "file:///data/nlp/a"}, 400, "name:"},
		{"the base's name", api.ServiceAdapterRequest{Name: "gpt-tiny", URI: "file:///data/nlp/a"}, 400, "task.builtin.adapters[2].name: \"gpt-tiny\" is the base model's name"},
		{"no uri", api.ServiceAdapterRequest{Name: "x"}, 400, "uri:"},
	}
	for _, tc := range refused {
		if _, err := ops.AddServiceAdapter(ctx, job.ID, tc.req); code(err) != tc.want || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s: %d %v, want %d %q", tc.name, code(err), err, tc.want, tc.msg)
		}
	}
	if _, err := ops.RemoveServiceAdapter(ctx, job.ID, "nope"); code(err) != 404 || !strings.Contains(err.Error(), "it has: legal, med") {
		t.Errorf("remove an adapter it does not have: %v, want 404 naming legal and med", err)
	}
	check("refusals", 2, []spec.Adapter{legal, med})
	if ans, err := ops.RemoveServiceAdapter(ctx, job.ID, "legal"); err != nil || ans.Version != 3 || !ans.Changed || ans.InPlace != 2 {
		t.Fatalf("remove: %+v %v", ans, err)
	}
	check("remove", 3, []spec.Adapter{med})
	vs, err := ops.JobVersions(ctx, job.ID)
	if err != nil || len(vs) != 4 {
		t.Errorf("history: %d versions %v, want 4 (submission and three changes)", len(vs), err)
	}
	if c := calls(); len(c) != 0 {
		t.Errorf("the replicas were called: %+v", c)
	}
}

// TestCarriedRefs: a job's catalog references follow its adapters when
// one is removed (the later ones move up) and go with the removed one.
func TestCarriedRefs(t *testing.T) {
	ref := func(field, uri string) api.ModelRef {
		return api.ModelRef{Field: field, Ref: "model://m", URI: uri}
	}
	js := &spec.Job{Task: spec.Task{Builtin: &spec.BuiltinTask{Adapters: []spec.Adapter{{Name: "b", URI: "file:///b"}, {Name: "c", URI: "file:///c"}}}}}
	got := carriedRefs([]api.ModelRef{
		ref("task.builtin.base", "file:///base"),
		ref("task.builtin.adapters[0].uri", "file:///a"),
		ref("task.builtin.adapters[1].uri", "file:///b"),
		ref("task.builtin.adapters[2].uri", "file:///c"),
	}, js)
	want := []api.ModelRef{
		ref("task.builtin.base", "file:///base"),
		ref("task.builtin.adapters[0].uri", "file:///b"),
		ref("task.builtin.adapters[1].uri", "file:///c"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("carried %+v\nwant %+v", got, want)
	}
}

// TestServiceAdapterStates: GET /v1/jobs/{id}/adapters asks every serving
// replica for its adapters and passes each one's states on, with the
// errors of failed ones, to the update or read capability; ?name= keeps
// one adapter, pending on a replica that does not list it yet though the
// spec has it; another tenant sees nothing.
func TestServiceAdapterStates(t *testing.T) {
	_, ops, reader, vision, job, _ := adapterService(t)
	ctx := context.Background()
	st, err := ops.ServiceAdapterStates(ctx, job.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][]api.ReplicaAdapter{}
	for _, r := range st.Replicas {
		if r.Error != "" {
			t.Errorf("replica %d: %s", r.Rank, r.Error)
		}
		got[r.Rank] = r.Adapters
	}
	want := map[int][]api.ReplicaAdapter{
		0: {{Name: "legal", URI: "file:///data/nlp/adapters/legal", Tier: api.AdapterHost}},
		1: {{Name: "legal", URI: "file:///data/nlp/adapters/legal", Tier: api.AdapterLoading},
			{Name: "med", URI: "file:///data/nlp/adapters/med", Tier: api.AdapterFailed, Error: "not an adapter of this base: trained on base file:///x"}},
	}
	if st.Job != job.ID || len(st.Replicas) != 2 || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Errorf("states %+v\nwant %+v", st, want)
	}
	if !got[0][0].Loaded() || got[1][0].Loaded() || got[1][1].Loaded() {
		t.Errorf("Loaded: host %v loading %v failed %v, want true false false", got[0][0].Loaded(), got[1][0].Loaded(), got[1][1].Loaded())
	}
	st, err = reader.ServiceAdapterStates(ctx, job.ID, "med")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range st.Replicas {
		for _, a := range r.Adapters {
			if a.Name != "med" {
				t.Errorf("?name=med lists %s on replica %d", a.Name, r.Rank)
			}
			n++
		}
	}
	if n != 1 {
		t.Errorf("?name=med: %d rows, want 1 (replica 1's)", n)
	}
	// An adapter of the spec the replicas do not list yet is pending.
	if _, err := ops.AddServiceAdapter(ctx, job.ID, api.ServiceAdapterRequest{Name: "fresh", URI: "file:///data/nlp/adapters/fresh"}); err != nil {
		t.Fatal(err)
	}
	st, err = ops.ServiceAdapterStates(ctx, job.ID, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Replicas {
		if want := (api.ReplicaAdapter{Name: "fresh", URI: "file:///data/nlp/adapters/fresh", Tier: api.AdapterPending}); len(r.Adapters) != 1 || r.Adapters[0] != want {
			t.Errorf("replica %d lists %+v, want %+v", r.Rank, r.Adapters, want)
		}
	}
	if _, err := vision.ServiceAdapterStates(ctx, job.ID, ""); code(err) != 404 {
		t.Errorf("another tenant: %v, want 404", err)
	}
	if _, err := ops.ServiceAdapterStates(ctx, job.ID, "bad name!"); code(err) != 400 {
		t.Errorf("a bad name: %v, want 400", err)
	}
}
