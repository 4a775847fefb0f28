package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/state"
)

// A committed entry the FSM cannot apply (here an unknown type without the
// ignorable flag, as an attacker on an open Raft port once appended) stops
// the server with an error naming the index, instead of a panic on every
// start; a flagged unknown type is skipped and the server goes on.
func TestServerStopsOnUndecodableEntry(t *testing.T) {
	s, err := New(Config{Name: "s1", HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", Bootstrap: true,
		DataDir: t.TempDir(), HeartbeatTTL: time.Minute, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	waitFor(t, 10*time.Second, "leader", s.IsLeader)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := s.raft.Apply(ctx, []byte{byte(state.IgnoreUnknownTypeFlag | 77), '{', '}'}); err != nil {
		t.Fatalf("a flagged unknown type: %v, want it skipped", err)
	}
	_, idx, err := s.raft.Apply(ctx, []byte{99, '{', '}'})
	var ue *state.UndecodableEntryError
	if !errors.As(err, &ue) {
		t.Fatalf("unknown type 99: %v, want an UndecodableEntryError", err)
	}
	select {
	case err := <-done:
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "index") {
			t.Errorf("Run returned %v, want the halt naming the index (%d)", err, idx)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept running on a halted state machine")
	}
}
