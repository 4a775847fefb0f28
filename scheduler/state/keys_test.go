package state

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
)

func TestNamespaceKeys(t *testing.T) {
	h := newHarness(t)
	if NamespaceKeyCreateType != 17 || NamespaceKeyDeleteType != 18 {
		t.Fatal("message type values changed")
	}
	k := &NamespaceKey{Namespace: "nlp", KeyID: "k1", Wrapped: []byte("sealed-1")}
	h.ok(NamespaceKeyCreateType, NamespaceKeyCreateRequest{Key: k})
	got := h.snap().NamespaceKey(nil, "nlp")
	if got == nil || got.KeyID != "k1" || !bytes.Equal(got.Wrapped, []byte("sealed-1")) || got.CreateIndex != h.index {
		t.Fatalf("stored key %+v", got)
	}
	// A second key for the namespace (a racing submission) keeps the first.
	err, _ := h.apply(NamespaceKeyCreateType, NamespaceKeyCreateRequest{Key: &NamespaceKey{Namespace: "nlp", KeyID: "k2", Wrapped: []byte("x")}}).(error)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second key: %v, want ErrConflict", err)
	}
	if got := h.snap().NamespaceKey(nil, "nlp"); got.KeyID != "k1" {
		t.Fatalf("second key replaced the first: %+v", got)
	}
	for _, bad := range []*NamespaceKey{nil, {KeyID: "k", Wrapped: []byte("x")}, {Namespace: "a", Wrapped: []byte("x")}, {Namespace: "a", KeyID: "k"}} {
		if err, _ := h.apply(NamespaceKeyCreateType, NamespaceKeyCreateRequest{Key: bad}).(error); err == nil {
			t.Errorf("key %+v accepted", bad)
		}
	}
	h.ok(NamespaceKeyCreateType, NamespaceKeyCreateRequest{Key: &NamespaceKey{Namespace: "vision", KeyID: "v1", Wrapped: []byte("sealed-v")}})
	if n := len(h.snap().NamespaceKeys(nil)); n != 2 {
		t.Fatalf("%d keys, want 2", n)
	}

	// Snapshot and restore keep them; the previous formats still read.
	snap := persist(t, h.fsm)
	restored := NewFSM(zaptest.NewLogger(t))
	if err := restored.Restore(readCloser(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := restored.Store().Snapshot().NamespaceKey(nil, "vision"); got == nil || got.KeyID != "v1" || !bytes.Equal(got.Wrapped, []byte("sealed-v")) {
		t.Fatalf("restored key %+v", got)
	}
	if a, b := restored.Store().Snapshot().Index(TableNamespaceKeys), h.snap().Index(TableNamespaceKeys); a != b || a == 0 {
		t.Fatalf("restored index %d, want %d", a, b)
	}
	v2 := strings.Replace(persist(t, populated(t).fsm).String(), fmt.Sprintf(`"version":%d`, SnapshotVersion), `"version":2`, 1)
	if err := NewFSM(zaptest.NewLogger(t)).Restore(readCloser([]byte(v2))); err != nil {
		t.Fatalf("restore a version 2 snapshot: %v", err)
	}

	// Deleting forgets it; a new one may then be created.
	h.ok(NamespaceKeyDeleteType, NamespaceKeyDeleteRequest{Namespace: "nlp"})
	if got := h.snap().NamespaceKey(nil, "nlp"); got != nil {
		t.Fatalf("deleted key still there: %+v", got)
	}
	if err, _ := h.apply(NamespaceKeyDeleteType, NamespaceKeyDeleteRequest{Namespace: "nlp"}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete again: %v, want ErrNotFound", err)
	}
	h.ok(NamespaceKeyCreateType, NamespaceKeyCreateRequest{Key: &NamespaceKey{Namespace: "nlp", KeyID: "k3", Wrapped: []byte("sealed-3")}})
}
