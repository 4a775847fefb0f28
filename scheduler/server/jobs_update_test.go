package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// nlpUpdaterPolicy may read and update nlp's jobs, not submit them.
const nlpUpdaterPolicy = `{"name":"nlp-updater","namespaces":[{"name":"nlp","capabilities":["read","update"],"queues":["nlp"],"maxPriority":100,` +
	`"storage":{"read":["file:///data/nlp"]}}]}`

// TestUpdateAttacks: a job update is a new spec, checked like a
// submission by the tenant who makes it. A tenant without the update
// capability, another tenant, and an updater who tries to reach another
// tenant's checkpoint, outrank everyone or move the job into another
// namespace are all refused, and the job keeps its version.
func TestUpdateAttacks(t *testing.T) {
	s, root, nlp, vision, _ := aclStateServer(t)
	ctx := context.Background()
	sub, err := nlp.SubmitJob(ctx, adapterSpec("nlp", "file:///data/nlp/base", "file:///data/nlp/adapter"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.ACLPolicyApply(ctx, "nlp-updater", []byte(nlpUpdaterPolicy)); err != nil {
		t.Fatal(err)
	}
	tk, err := root.ACLTokenCreate(ctx, api.ACLTokenRequest{Name: "updater", Policies: []string{"nlp-updater"}})
	if err != nil {
		t.Fatal(err)
	}
	updater := as(t, s, tk.SecretID)
	withPrio := func(ns string, prio int, base string) []byte {
		return []byte(strings.Replace(string(adapterSpec(ns, base, "file:///data/nlp/adapter")), `"priority":50`, fmt.Sprintf(`"priority":%d`, prio), 1))
	}
	cases := []struct {
		name string
		c    interface {
			UpdateJob(context.Context, string, []byte, int) (*api.UpdateResponse, error)
		}
		spec []byte
		want int
		msg  string
	}{
		{"no update capability", nlp, withPrio("nlp", 60, "file:///data/nlp/base"), 403, `lacks capability "update" on jobs of namespace "nlp"`},
		{"another tenant", vision, withPrio("nlp", 60, "file:///data/nlp/base"), 404, "not found"},
		{"another tenant's checkpoint", updater, withPrio("nlp", 60, "file:///data/vision/ckpt"), 403,
			`task.builtin.base: namespace "nlp" may not read "file:///data/vision/ckpt"`},
		{"priority 1000", updater, withPrio("nlp", 1000, "file:///data/nlp/base"), 403, "may not update jobs at priority 1000"},
		{"into another namespace", updater, withPrio("vision", 60, "file:///data/nlp/base"), 403, `may not update jobs in namespace "vision"`},
		{"management into another namespace", root, withPrio("vision", 60, "file:///data/nlp/base"), 409, "cannot change name, namespace or kind"},
		{"bad spec", updater, []byte(`{"name":"srv","namespace":"nlp","kind":"inference","replicas":-1}`), 400, "replicas"},
	}
	for _, tc := range cases {
		_, err := tc.c.UpdateJob(ctx, sub.ID, tc.spec, -1)
		if got := code(err); got != tc.want || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s: %d %v, want %d %q", tc.name, got, err, tc.want, tc.msg)
		}
	}
	if j, _, err := root.Job(ctx, sub.ID, 0, 0); err != nil || j.Version != 0 {
		t.Fatalf("after refused updates: version %d (%v), want 0", j.Version, err)
	}

	// The updater's own change goes through, once: the same update made
	// against the old version again is refused.
	ok := withPrio("nlp", 70, "file:///data/nlp/base")
	if r, err := updater.UpdateJob(ctx, sub.ID, ok, 0); err != nil || r.Version != 1 || r.Rollout {
		t.Fatalf("update: %+v %v, want version 1 without a rollout (the job is pending)", r, err)
	}
	if _, err := updater.UpdateJob(ctx, sub.ID, ok, 0); code(err) != 409 {
		t.Fatalf("a second update against version 0: %v, want 409", err)
	}
	vs, err := updater.JobVersions(ctx, sub.ID)
	if err != nil || len(vs) != 2 || vs[1].Spec.Priority != 70 || vs[0].Spec.Priority != 50 {
		t.Fatalf("versions: %+v %v", vs, err)
	}
	if _, err := vision.JobVersions(ctx, sub.ID); code(err) != 404 {
		t.Fatalf("another tenant lists the versions: %v, want 404", err)
	}
}
