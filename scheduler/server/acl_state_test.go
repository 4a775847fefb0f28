package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/spec"
)

const nlpPolicy = `
name: nlp-team
namespaces:
  - name: nlp
    capabilities: [submit, read, cancel]
    queues: [default, nlp]
    maxPriority: 100
    limits: {pendingJobs: 3, gpus: 16}
    storage:
      read: ["file:///data/nlp", "s3://models/nlp/"]
`

const visionPolicy = `{"name":"vision-team","namespaces":[{"name":"vision","capabilities":["submit","read","logs"],"queues":["research"]}]}`

// nlpReader may only read nlp's jobs.
const nlpReaderPolicy = `{"name":"nlp-reader","namespaces":[{"name":"nlp","capabilities":["read"]}]}`

// builtinSpec is a finetune job of the builtin runtime.
func builtinSpec(ns, queue string, prio int, base, data string) []byte {
	return fmt.Appendf(nil, `{"name":"ft","namespace":%q,"queue":%q,"priority":%d,"kind":"finetune","resources":{"gpus":1},`+
		`"task":{"driver":"builtin","builtin":{"model":"gpt-tiny","base":%q,"data":%q}}}`, ns, queue, prio, base, data)
}

func evalSpec(ns, base string) []byte {
	return fmt.Appendf(nil, `{"name":"ev","namespace":%q,"queue":"nlp","priority":50,"kind":"eval","resources":{"gpus":1},`+
		`"task":{"driver":"builtin","builtin":{"model":"gpt-tiny","base":%q,"data":"/data/nlp/t"}}}`, ns, base)
}

func adapterSpec(ns, base, adapter string) []byte {
	return fmt.Appendf(nil, `{"name":"srv","namespace":%q,"queue":"nlp","priority":50,"kind":"inference","resources":{"gpus":1},`+
		`"task":{"driver":"builtin","builtin":{"model":"gpt-tiny","base":%q,"adapters":[{"name":"a","uri":%q}]}}}`, ns, base, adapter)
}

// aclStateServer is an ACL server bootstrapped, with the nlp, vision and
// nlp-reader policies and a token for each; it returns the bootstrap
// (management) client and the tenants' clients.
func aclStateServer(t *testing.T) (s *Server, root, nlp, vision, reader *client.Client) {
	t.Helper()
	return aclStateServerWith(t, Config{})
}

// aclStateServerWith is aclStateServer with more of its config.
func aclStateServerWith(t *testing.T, cfg Config) (s *Server, root, nlp, vision, reader *client.Client) {
	t.Helper()
	s = aclServerWith(t, cfg)
	ctx := context.Background()
	boot, err := as(t, s, mgmtTok).ACLBootstrap(ctx)
	if err != nil || boot.SecretID == "" || boot.Type != api.ACLManagementToken {
		t.Fatalf("bootstrap: %+v %v", boot, err)
	}
	root = as(t, s, boot.SecretID)
	for name, doc := range map[string]string{"nlp-team": nlpPolicy, "vision-team": visionPolicy, "nlp-reader": nlpReaderPolicy} {
		if _, err := root.ACLPolicyApply(ctx, name, []byte(doc)); err != nil {
			t.Fatalf("apply %s: %v", name, err)
		}
	}
	tok := func(policy string) *client.Client {
		tk, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Name: policy, Policies: []string{policy}})
		if err != nil || tk.SecretID == "" || tk.AccessorID == "" {
			t.Fatalf("token for %s: %+v %v", policy, tk, err)
		}
		return as(t, s, tk.SecretID)
	}
	return s, root, tok("nlp-team"), tok("vision-team"), tok("nlp-reader")
}

// TestACLStateAttack5 replays attack 5 of issue 14 with tokens of the ACL
// state: a tenant used another team's queue, outranked everyone at
// priority 1000, and loaded another tenant's checkpoint as its base
// (with "../" cleaned rather than refused).
func TestACLStateAttack5(t *testing.T) {
	s, root, nlp, vision, reader := aclStateServer(t)
	ctx := context.Background()
	cases := []struct {
		name string
		c    *client.Client
		spec []byte
		want int
		msg  string
	}{
		{"own namespace and queue", nlp, builtinSpec("nlp", "nlp", 100, "file:///data/nlp/base", "/data/nlp/train.txt"), 200, ""},
		{"plain path and s3 prefix", nlp, builtinSpec("nlp", "default", 0, "s3://models/nlp/llama", "/data/nlp/a/b.txt"), 200, ""},
		{"another team's queue", nlp, builtinSpec("nlp", "research", 50, "", "/data/nlp/t"), 403,
			`namespace "nlp" may not use queue "research" (policy nlp-team allows: default, nlp)`},
		{"another namespace", nlp, builtinSpec("vision", "research", 50, "", "/data/nlp/t"), 403, `may not submit to namespace "vision" (its policies grant submit in: nlp)`},
		{"priority 1000", nlp, builtinSpec("nlp", "nlp", 1000, "", "/data/nlp/t"), 403, `may not submit at priority 1000 (policy nlp-team allows at most 100)`},
		{"default max priority", vision, builtinSpec("vision", "research", 51, "", "/x"), 403, `allows at most 50`},
		{"another tenant's checkpoint", nlp, builtinSpec("nlp", "nlp", 50, "file:///data/vision/ckpt", "/data/nlp/t"), 403,
			`task.builtin.base: namespace "nlp" may not read "file:///data/vision/ckpt" (policy nlp-team allows reading: file:///data/nlp, s3://models/nlp/)`},
		{"a sibling prefix", nlp, builtinSpec("nlp", "nlp", 50, "", "/data/nlp2/t"), 403, `task.builtin.data: namespace "nlp" may not read "/data/nlp2/t"`},
		{"dot-dot traversal", nlp, builtinSpec("nlp", "nlp", 50, "file:///data/nlp/../vision/ckpt", "/data/nlp/t"), 403, "traversal is refused"},
		{"encoded traversal", nlp, builtinSpec("nlp", "nlp", 50, "file:///data/nlp/%2e%2e/vision/ckpt", "/data/nlp/t"), 403, "traversal is refused"},
		{"plain path traversal", nlp, builtinSpec("nlp", "nlp", 50, "", "/data/nlp/./../vision/t"), 403, "traversal is refused"},
		{"relative path", nlp, builtinSpec("nlp", "nlp", 50, "", "data/nlp/t"), 403, "must be an absolute path"},
		{"no submit capability", reader, builtinSpec("nlp", "nlp", 50, "", "/data/nlp/t"), 403, "grant submit in: none"},
		{"management submits anywhere", root, builtinSpec("vision", "anything", 1000, "file:///data/nlp/x", "/y"), 200, ""},
		// An eval job's base lists candidates (BASE,ADAPTER): each one is
		// a location of its own, not a suffix of the first.
		{"another tenant's checkpoint as an eval candidate", nlp, evalSpec("nlp", "file:///data/nlp/base,file:///data/vision/ckpt"), 403,
			`task.builtin.base: namespace "nlp" may not read "file:///data/vision/ckpt"`},
		// Adapters an inference job serves are read like its base.
		{"another tenant's adapter", nlp, adapterSpec("nlp", "file:///data/nlp/base", "file:///data/vision/adapter"), 403,
			`task.builtin.adapters[0].uri: namespace "nlp" may not read "file:///data/vision/adapter"`},
	}
	for _, tc := range cases {
		_, err := tc.c.SubmitJob(ctx, tc.spec)
		if got := code(err); got != tc.want || (tc.msg != "" && !strings.Contains(fmt.Sprint(err), tc.msg)) {
			t.Errorf("%s: %d %v, want %d %q", tc.name, got, err, tc.want, tc.msg)
		}
	}

	// Reads, cancels and logs need their capability; another namespace's
	// jobs stay hidden.
	jobs, err := nlp.Jobs(ctx, "")
	if err != nil || len(jobs) != 2 {
		t.Fatalf("nlp sees %d jobs (%v), want its 2", len(jobs), err)
	}
	if vj, _ := vision.Jobs(ctx, ""); len(vj) != 1 || vj[0].Namespace != "vision" {
		t.Errorf("vision sees %v, want only the vision job", vj)
	}
	id := jobs[0].ID
	if _, _, err := vision.Job(ctx, id, 0, 0); code(err) != http.StatusNotFound {
		t.Errorf("vision reads an nlp job: %v, want 404", err)
	}
	if err := reader.CancelJob(ctx, id); code(err) != http.StatusForbidden || !strings.Contains(err.Error(), `lacks capability "cancel" on jobs of namespace "nlp"`) {
		t.Errorf("reader cancels: %v, want 403 naming cancel", err)
	}
	if _, err := nlp.JobLogs(ctx, id, 0, "stdout", false); code(err) != http.StatusForbidden || !strings.Contains(err.Error(), `lacks capability "logs"`) {
		t.Errorf("nlp reads logs without the logs capability: %v, want 403", err)
	}
	if err := nlp.CancelJob(ctx, id); err != nil {
		t.Errorf("nlp cancels its own job: %v", err)
	}
	// A tenant's ACL token is not an operator's.
	for name, err := range map[string]error{
		"policies": func() error { _, err := nlp.ACLPolicies(ctx); return err }(),
		"create":   func() error { _, err := nlp.ACLTokenCreate(ctx, api.ACLTokenRequest{Type: "management"}); return err }(),
		"peers":    func() error { _, err := nlp.RaftPeers(ctx); return err }(),
	} {
		if code(err) != http.StatusForbidden {
			t.Errorf("tenant token, %s: %v, want 403", name, err)
		}
	}
	self, err := nlp.ACLTokenSelf(ctx)
	if err != nil || self.Policies[0] != "nlp-team" || self.SecretID != "" {
		t.Errorf("token self: %+v %v", self, err)
	}
	_ = s
}

func TestACLStateLimits(t *testing.T) {
	_, _, nlp, _, _ := aclStateServer(t)
	ctx := context.Background()
	// pendingJobs: 3 (nothing runs: no nodes).
	for i := range 3 {
		if _, err := nlp.SubmitJob(ctx, builtinSpec("nlp", "nlp", 50, "", "/data/nlp/t")); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	_, err := nlp.SubmitJob(ctx, builtinSpec("nlp", "nlp", 50, "", "/data/nlp/t"))
	if code(err) != http.StatusForbidden || !strings.Contains(err.Error(), `namespace "nlp" has 3 pending jobs (policy nlp-team allows 3)`) {
		t.Fatalf("fourth pending job: %v", err)
	}
	jobs, _ := nlp.Jobs(ctx, "")
	if err := nlp.CancelJob(ctx, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	// gpus: 16 in all; 2 pending jobs hold 2, a 4x4 job would make 18.
	big := []byte(strings.Replace(string(builtinSpec("nlp", "nlp", 50, "", "/data/nlp/t")), `"resources":{"gpus":1}`, `"replicas":4,"resources":{"gpus":4}`, 1))
	if _, err := nlp.SubmitJob(ctx, big); code(err) != http.StatusForbidden || !strings.Contains(err.Error(), "would ask for 18 GPUs") {
		t.Fatalf("job past the GPU limit: %v", err)
	}
}

func TestACLStateTokenLifecycle(t *testing.T) {
	s, root, nlp, _, _ := aclStateServer(t)
	ctx := context.Background()
	mgmt := as(t, s, mgmtTok)

	// Bootstrap works once, whoever asks.
	for _, c := range []*client.Client{mgmt, root} {
		if _, err := c.ACLBootstrap(ctx); code(err) != http.StatusConflict || !strings.Contains(err.Error(), "already done") {
			t.Errorf("second bootstrap: %v, want 409", err)
		}
	}

	// An expired token is refused as unauthenticated: at the boundary
	// (with the clock moved), and over HTTP once its TTL has passed.
	long, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Policies: []string{"nlp-team"}, TTL: "1h"})
	if err != nil || long.ExpirationTime == nil {
		t.Fatalf("token with a TTL: %+v %v", long, err)
	}
	if _, ok, err := s.stateTokenPrincipal(long.SecretID, long.ExpirationTime.Add(-time.Second)); !ok || err != nil {
		t.Fatalf("token before its expiry: %v %v", ok, err)
	}
	if _, ok, err := s.stateTokenPrincipal(long.SecretID, *long.ExpirationTime); !ok || !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("token at its expiry: %v %v, want unauthenticated", ok, err)
	}
	short, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Policies: []string{"nlp-team"}, TTL: "1ms"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := as(t, s, short.SecretID).Jobs(ctx, ""); code(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v, want 401", err)
	}

	// A deleted token is refused at once.
	toks, err := root.ACLTokens(ctx)
	if err != nil || len(toks) != 6 {
		t.Fatalf("tokens: %d %v, want 6 (bootstrap, 3 tenants, 2 with a TTL)", len(toks), err)
	}
	for _, tk := range toks {
		if tk.SecretID != "" {
			t.Fatalf("token list shows a secret: %+v", tk)
		}
	}
	self, _ := nlp.ACLTokenSelf(ctx)
	if err := root.ACLTokenDelete(ctx, self.AccessorID); err != nil {
		t.Fatal(err)
	}
	if _, err := nlp.Jobs(ctx, ""); code(err) != http.StatusUnauthorized {
		t.Errorf("deleted token: %v, want 401", err)
	}
	if err := root.ACLTokenDelete(ctx, self.AccessorID); code(err) != http.StatusNotFound {
		t.Errorf("deleting twice: %v, want 404", err)
	}

	// A deleted policy grants nothing to the tokens that name it.
	vt, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Policies: []string{"vision-team"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.ACLPolicyDelete(ctx, "vision-team"); err != nil {
		t.Fatal(err)
	}
	if _, err := as(t, s, vt.SecretID).SubmitJob(ctx, builtinSpec("vision", "research", 50, "", "/x")); code(err) != http.StatusForbidden {
		t.Errorf("token of a deleted policy submits: %v, want 403", err)
	}
	if _, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Policies: []string{"vision-team"}}); code(err) != http.StatusBadRequest {
		t.Errorf("token naming a missing policy: %v, want 400", err)
	}

	// The token file's tokens keep working as before.
	if _, err := as(t, s, nlpTok).SubmitJob(ctx, []byte(strings.Replace(gangSpec, `"name":"gang"`, `"name":"gang","namespace":"nlp"`, 1))); err != nil {
		t.Errorf("token file namespace token: %v", err)
	}
}

// TestACLStateSurvivesSnapshotRestore: an operator snapshot carries the
// policies and tokens; restoring it brings back a deleted policy and token.
func TestACLStateSurvivesSnapshotRestore(t *testing.T) {
	s, root, nlp, _, _ := aclStateServer(t)
	ctx := context.Background()
	rc, err := root.SnapshotSave(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	self, _ := nlp.ACLTokenSelf(ctx)
	if err := root.ACLTokenDelete(ctx, self.AccessorID); err != nil {
		t.Fatal(err)
	}
	if err := root.ACLPolicyDelete(ctx, "nlp-team"); err != nil {
		t.Fatal(err)
	}
	if err := as(t, s, mgmtTok).SnapshotRestore(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if p, err := root.ACLPolicy(ctx, "nlp-team"); err != nil || p.Namespaces[0].MaxPriority != 100 {
		t.Fatalf("policy after restore: %+v %v", p, err)
	}
	if _, err := nlp.SubmitJob(ctx, builtinSpec("nlp", "nlp", 50, "", "/data/nlp/t")); err != nil {
		t.Errorf("restored token submits: %v", err)
	}
	if _, err := as(t, s, mgmtTok).ACLBootstrap(ctx); code(err) != http.StatusConflict {
		t.Errorf("bootstrap after restore: %v, want 409", err)
	}
}

func TestDecodePolicyErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"empty", "", "policy is empty"},
		{"unknown field", "name: a\nnamespaces: [{name: nlp, capabilities: [read], queue: [x]}]", `namespaces[0]: unknown field "queue"`},
		{"wrong type", "name: a\nnamespaces: [{name: nlp, capabilities: read}]", "namespaces[0].capabilities: must be a list"},
		{"not an integer", "name: a\nnamespaces: [{name: nlp, capabilities: [read], maxPriority: 1.5}]", "namespaces[0].maxPriority: must be an integer"},
		{"repeated key", "name: a\nname: b\nnamespaces: []", "malformed policy"},
		{"no name", "namespaces: [{name: nlp, capabilities: [read]}]", "name: is required"},
		{"no namespaces", "name: a", "namespaces: is required"},
		{"bad capability", "name: a\nnamespaces: [{name: nlp, capabilities: [admin]}]", `namespaces[0].capabilities[0]: must be one of submit, read, cancel, logs, update, services, got "admin"`},
		{"namespace twice", "name: a\nnamespaces: [{name: nlp, capabilities: [read]}, {name: nlp, capabilities: [submit]}]", `namespaces[1].name: namespace "nlp" is listed twice`},
		{"priority", "name: a\nnamespaces: [{name: nlp, capabilities: [read], maxPriority: 1001}]", "namespaces[0].maxPriority: must be between 0 and 1000"},
		{"negative limit", "name: a\nnamespaces: [{name: nlp, capabilities: [read], limits: {gpus: -1}}]", "namespaces[0].limits.gpus: must be >= 0"},
		{"traversal prefix", "name: a\nnamespaces: [{name: nlp, capabilities: [read], storage: {read: [/data/../etc]}}]", "namespaces[0].storage.read[0]: must not contain '.' or '..' segments"},
		{"relative prefix", "name: a\nnamespaces: [{name: nlp, capabilities: [read], storage: {write: [data]}}]", "namespaces[0].storage.write[0]: must be an absolute path"},
		{"bad queue", "name: a\nnamespaces: [{name: nlp, capabilities: [read], queues: [Big]}]", "namespaces[0].queues[0]: must be at most 63 lowercase"},
	}
	for _, tt := range tests {
		_, err := DecodePolicy([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	p, err := DecodePolicy([]byte(nlpPolicy))
	if err != nil || p.Name != "nlp-team" || p.Namespaces[0].Limits.PendingJobs != 3 || len(p.Namespaces[0].Storage.Read) != 2 {
		t.Fatalf("good policy: %+v %v", p, err)
	}
	// Field problems are a field list (a 400 with paths), all of them.
	_, err = DecodePolicy([]byte("name: A\nnamespaces: [{name: nlp, capabilities: [x], maxPriority: -1}]"))
	if es, ok := err.(spec.Errors); !ok || len(es) != 3 {
		t.Fatalf("field problems: %#v, want 3 spec.Errors", err)
	}
}

func TestStorageKey(t *testing.T) {
	for loc, want := range map[string]string{
		"/data/nlp":             "file:///data/nlp",
		"file:///data/nlp/x":    "file:///data/nlp/x",
		"S3://bucket/p":         "s3://bucket/p",
		"/data/nlp/":            "file:///data/nlp/",
		"/data/nlp/..":          "",
		"/data/nlp/%2E%2e/x":    "",
		"/data/nlp/%2e/x":       "",
		"file://host/x":         "",
		"/data//nlp":            "",
		"/data/nlp?x=/../":      "",
		"/data/nlp\\..\\vision": "",
		"/data/nlp/%zz":         "",
	} {
		got, err := storageKey(loc)
		if (want == "") != (err != nil) || got != want {
			t.Errorf("storageKey(%q) = %q, %v; want %q", loc, got, err, want)
		}
	}
	for _, tc := range []struct {
		key, prefix string
		want        bool
	}{
		{"file:///data/nlp", "file:///data/nlp", true},
		{"file:///data/nlp/x", "file:///data/nlp/", true},
		{"file:///data/nlp2", "file:///data/nlp", false},
		{"s3://models/nlp/a", "s3://models/nlp", true},
		{"s3://models/nlpx", "s3://models/nlp/", false},
	} {
		if got := underPrefix(tc.key, tc.prefix); got != tc.want {
			t.Errorf("underPrefix(%q, %q) = %v", tc.key, tc.prefix, got)
		}
	}
}

// TestBuiltinReads: every location a builtin task reads is checked on its
// own, eval candidates and served adapters included.
func TestBuiltinReads(t *testing.T) {
	b := &spec.BuiltinTask{Base: "file:///data/nlp/base, file:///data/nlp/adapter", Data: "/data/nlp/t",
		Adapters: []spec.Adapter{{Name: "a", URI: "s3://models/nlp/a"}}}
	got := builtinReads(b)
	want := []storageRead{{"task.builtin.base", "file:///data/nlp/base"}, {"task.builtin.base", "file:///data/nlp/adapter"},
		{"task.builtin.data", "/data/nlp/t"}, {"task.builtin.adapters[0].uri", "s3://models/nlp/a"}}
	if !slices.Equal(got, want) {
		t.Fatalf("builtinReads = %v, want %v", got, want)
	}
	if builtinReads(nil) != nil {
		t.Fatal("an exec task reads nothing")
	}
}

// TestACLServicesCapability: calling a service needs the services
// capability on its namespace. Before, any token that could see the
// namespace (read alone) called the service's endpoint.
func TestACLServicesCapability(t *testing.T) {
	_, root, nlp, vision, reader := aclStateServer(t)
	ctx := context.Background()
	j, err := root.SubmitJob(ctx, []byte(`{"name":"svc","namespace":"nlp","kind":"inference","replicas":1,"resources":{"gpus":1},`+
		`"task":{"driver":"exec","exec":{"command":["sleep","600"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *client.Client
		want int
		msg  string
	}{
		{"read only", reader, http.StatusForbidden, `lacks capability "services" on jobs of namespace "nlp"`},
		{"submit, read, cancel", nlp, http.StatusForbidden, `lacks capability "services"`},
		{"another namespace", vision, http.StatusNotFound, ""},
		// Past the check (want 0): no replica is ready (no nodes), which
		// the endpoint says with a 503 the client retries until its
		// deadline.
		{"management", root, 0, ""},
	} {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := tc.c.CallService(cctx, j.ID, "/v1/generate", map[string]any{"prompt": "x"}, nil)
		cancel()
		got := code(err)
		if tc.want == 0 && (got == http.StatusForbidden || got == http.StatusNotFound) ||
			tc.want != 0 && (got != tc.want || !strings.Contains(fmt.Sprint(err), tc.msg)) {
			t.Errorf("%s: %d %v, want %d %q", tc.name, got, err, tc.want, tc.msg)
		}
	}
}
