package state

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
)

func aclPolicy(name, ns string) *api.ACLPolicy {
	return &api.ACLPolicy{Name: name, Namespaces: []api.ACLNamespaceRule{{
		Name: ns, Capabilities: []string{api.CapSubmit, api.CapRead}, Queues: []string{ns}, MaxPriority: 100,
		Storage: api.ACLPrefixes{Read: []string{"file:///data/" + ns}},
	}}}
}

func aclToken(accessor, hash string, typ string, policies ...string) *ACLToken {
	return &ACLToken{AccessorID: accessor, SecretHash: hash, Type: typ, Policies: policies, CreateTime: t0}
}

func TestACLMessageTypeValues(t *testing.T) {
	// The values are part of the log format: never renumber.
	if ACLBootstrapType != 12 || ACLUpsertPolicyType != 13 || ACLDeletePolicyType != 14 || ACLUpsertTokenType != 15 || ACLDeleteTokenType != 16 {
		t.Fatal("ACL message type values changed")
	}
}

func TestACLBootstrapOnce(t *testing.T) {
	h := newHarness(t)
	if h.snap().ACLBootstrapped() {
		t.Fatal("a new store is bootstrapped")
	}
	h.ok(ACLBootstrapType, ACLBootstrapRequest{Token: aclToken("acc-1", "hash-1", api.ACLManagementToken)})
	if !h.snap().ACLBootstrapped() || h.snap().ACLTokenBySecretHash("hash-1") == nil {
		t.Fatal("bootstrap did not store the management token")
	}
	err, _ := h.apply(ACLBootstrapType, ACLBootstrapRequest{Token: aclToken("acc-2", "hash-2", api.ACLManagementToken)}).(error)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already done") {
		t.Fatalf("second bootstrap: %v, want a conflict", err)
	}
	if h.snap().ACLToken(nil, "acc-2") != nil {
		t.Fatal("a refused bootstrap stored its token")
	}
	// Deleting the bootstrap token does not open bootstrap again.
	h.ok(ACLDeleteTokenType, ACLDeleteTokenRequest{AccessorID: "acc-1"})
	if err, _ := h.apply(ACLBootstrapType, ACLBootstrapRequest{Token: aclToken("acc-3", "hash-3", api.ACLManagementToken)}).(error); !errors.Is(err, ErrConflict) {
		t.Fatalf("bootstrap after deleting the first token: %v, want a conflict", err)
	}
	if err, _ := newHarness(t).apply(ACLBootstrapType, ACLBootstrapRequest{Token: aclToken("a", "h", api.ACLClientToken)}).(error); err == nil {
		t.Fatal("bootstrap with a client token was accepted")
	}
}

func TestACLPoliciesAndTokens(t *testing.T) {
	h := newHarness(t)
	h.ok(ACLUpsertPolicyType, ACLUpsertPolicyRequest{Policy: aclPolicy("nlp-team", "nlp")})
	created := h.index
	p := aclPolicy("nlp-team", "nlp")
	p.Description = "changed"
	h.ok(ACLUpsertPolicyType, ACLUpsertPolicyRequest{Policy: p})
	got := h.snap().ACLPolicy(nil, "nlp-team")
	if got == nil || got.Description != "changed" || got.CreateIndex != created || got.ModifyIndex != h.index {
		t.Fatalf("policy after update: %+v", got)
	}
	if len(h.snap().ACLPolicies(nil)) != 1 {
		t.Fatal("an update added a second policy of the same name")
	}

	// A token naming an unknown policy is refused.
	if err, _ := h.apply(ACLUpsertTokenType, ACLUpsertTokenRequest{Token: aclToken("a1", "h1", api.ACLClientToken, "nope")}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token with an unknown policy: %v", err)
	}
	h.ok(ACLUpsertTokenType, ACLUpsertTokenRequest{Token: aclToken("a1", "h1", api.ACLClientToken, "nlp-team")})
	for name, tok := range map[string]*ACLToken{
		"same accessor": aclToken("a1", "h2", api.ACLClientToken),
		"same secret":   aclToken("a2", "h1", api.ACLClientToken),
	} {
		if err, _ := h.apply(ACLUpsertTokenType, ACLUpsertTokenRequest{Token: tok}).(error); !errors.Is(err, ErrConflict) {
			t.Errorf("%s: %v, want a conflict", name, err)
		}
	}
	if tok := h.snap().ACLTokenBySecretHash("h1"); tok == nil || tok.AccessorID != "a1" || tok.Policies[0] != "nlp-team" {
		t.Fatalf("token by secret: %+v", tok)
	}

	h.ok(ACLDeletePolicyType, ACLDeletePolicyRequest{Name: "nlp-team"})
	if err, _ := h.apply(ACLDeletePolicyType, ACLDeletePolicyRequest{Name: "nlp-team"}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a deleted policy: %v", err)
	}
	h.ok(ACLDeleteTokenType, ACLDeleteTokenRequest{AccessorID: "a1"})
	if h.snap().ACLTokenBySecretHash("h1") != nil {
		t.Fatal("a deleted token is still found by its secret")
	}
	if err, _ := h.apply(ACLDeleteTokenType, ACLDeleteTokenRequest{AccessorID: "a1"}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a deleted token: %v", err)
	}
}

// TestACLSnapshotRoundTrip: policies, tokens and the bootstrap survive a
// snapshot and restore; a version 1 snapshot (before ACLs) still restores.
func TestACLSnapshotRoundTrip(t *testing.T) {
	h := populated(t)
	h.ok(ACLBootstrapType, ACLBootstrapRequest{Token: aclToken("root", "hash-root", api.ACLManagementToken)})
	h.ok(ACLUpsertPolicyType, ACLUpsertPolicyRequest{Policy: aclPolicy("nlp-team", "nlp")})
	tok := aclToken("a1", "h1", api.ACLClientToken, "nlp-team")
	tok.ExpirationTime = t0.Add(3600e9)
	h.ok(ACLUpsertTokenType, ACLUpsertTokenRequest{Token: tok})
	sink := persist(t, h.fsm)

	restored := NewFSM(zaptest.NewLogger(t))
	if err := restored.Restore(readCloser(sink.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	want, got := h.snap(), restored.Store().Snapshot()
	if !reflect.DeepEqual(got.ACLPolicies(nil), want.ACLPolicies(nil)) {
		t.Errorf("policies: got %+v, want %+v", got.ACLPolicies(nil), want.ACLPolicies(nil))
	}
	gt, wt := got.ACLTokens(nil), want.ACLTokens(nil)
	if len(gt) != 2 || len(wt) != 2 {
		t.Fatalf("tokens: got %d, want 2", len(gt))
	}
	for i := range gt {
		if !reflect.DeepEqual(gt[i].API(), wt[i].API()) || gt[i].SecretHash != wt[i].SecretHash || !gt[i].ExpirationTime.Equal(wt[i].ExpirationTime) {
			t.Errorf("token %d: got %+v, want %+v", i, gt[i], wt[i])
		}
	}
	if !got.ACLBootstrapped() {
		t.Error("restore forgot the bootstrap: it could be done again")
	}
	for _, tbl := range []string{TableACLPolicies, TableACLTokens} {
		if got.Index(tbl) != want.Index(tbl) || got.Index(tbl) == 0 {
			t.Errorf("index of %s: got %d, want %d", tbl, got.Index(tbl), want.Index(tbl))
		}
	}

	// The version before ACLs is still read.
	v1 := persist(t, populated(t).fsm).String()
	v1 = strings.Replace(v1, fmt.Sprintf(`"version":%d`, SnapshotVersion), `"version":1`, 1)
	if err := NewFSM(zaptest.NewLogger(t)).Restore(readCloser([]byte(v1))); err != nil {
		t.Fatalf("restore a version 1 snapshot: %v", err)
	}
}

func TestNamespaceUsage(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"a", "b"} {
		j := testJob(id, 2, 4)
		j.Namespace = "nlp"
		h.ok(RegisterJobType, RegisterJobRequest{Job: j})
	}
	h.addJob("other", 1, 8) // another namespace
	u := h.snap().NamespaceUsage("nlp")
	if u.Pending != 2 || u.Running != 0 || u.GPUMilli != 2*2*4*1000 {
		t.Fatalf("usage %+v", u)
	}
	h.ok(CancelJobType, CancelJobRequest{JobID: "a", Time: t0})
	if u := h.snap().NamespaceUsage("nlp"); u.Pending != 1 || u.GPUMilli != 8000 {
		t.Fatalf("usage after a cancel %+v", u)
	}
}
