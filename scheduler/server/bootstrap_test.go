package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

func TestExpectClash(t *testing.T) {
	self := func(k int) api.ServerSelf { return api.ServerSelf{BootstrapExpect: k} }
	for _, tc := range []struct {
		name  string
		found map[string]api.ServerSelf
		want  string
	}{
		{"all agree", map[string]api.ServerSelf{"s1": self(3), "s2": self(3), "s3": self(3)}, ""},
		{"joiners without expect", map[string]api.ServerSelf{"s1": self(3), "s2": self(1), "s3": self(0)}, ""},
		{"one disagrees", map[string]api.ServerSelf{"s1": self(3), "s2": self(5)}, "server s2 expects 5 servers and this one 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: Config{Name: "s1", BootstrapExpect: 3}}
			got := s.expectClash(tc.found)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("expectClash = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSelfRecordsCaller: a forming server started with no --join learns of
// the servers that ask about it (the from parameter), and only of
// host:port addresses other than its own.
func TestSelfRecordsCaller(t *testing.T) {
	s, err := New(Config{Name: "s1", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		BootstrapExpect: 3, HeartbeatTTL: time.Minute, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := client.New(s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"127.0.0.1:9", "not-an-address", s.HTTPAddr(), ""} {
		var self api.ServerSelf
		if err := s.getJSON(ctx, s.HTTPAddr(), "/v1/operator/raft/self?from="+from, &self); err != nil {
			t.Fatal(err)
		}
		if self.HasState || self.BootstrapExpect != 3 {
			t.Fatalf("self %+v: want no state and bootstrapExpect 3", self)
		}
	}
	self, err := c.ServerSelf(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(self.Peers, []string{"127.0.0.1:9"}) {
		t.Errorf("peers %v, want only the caller 127.0.0.1:9", self.Peers)
	}
}
