package cluster

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestTimeoutsMultiplier(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name    string
		cfg     Config
		want    raftTimeouts
		wantErr string
	}{
		{"defaults", Config{}, raftTimeouts{500 * ms, 500 * ms, 250 * ms}, ""},
		{"multiplier 1", Config{Multiplier: 1}, raftTimeouts{500 * ms, 500 * ms, 250 * ms}, ""},
		{"multiplier 4", Config{Multiplier: 4}, raftTimeouts{2000 * ms, 2000 * ms, 1000 * ms}, ""},
		{"multiplier 10", Config{Multiplier: 10}, raftTimeouts{5000 * ms, 5000 * ms, 2500 * ms}, ""},
		// Tests set fast timings and leave the multiplier alone.
		{"explicit", Config{HeartbeatTimeout: 50 * ms, ElectionTimeout: 60 * ms, LeaderLeaseTimeout: 40 * ms}, raftTimeouts{50 * ms, 60 * ms, 40 * ms}, ""},
		{"explicit scaled", Config{HeartbeatTimeout: 50 * ms, ElectionTimeout: 60 * ms, Multiplier: 2}, raftTimeouts{100 * ms, 120 * ms, 500 * ms}, ""},
		{"too large", Config{Multiplier: 11}, raftTimeouts{}, "raft multiplier must be 1..10 (1: fastest failover), got 11"},
		{"negative", Config{Multiplier: -1}, raftTimeouts{}, "got -1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.cfg.timeouts()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("timeouts() = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestMapErrBusy(t *testing.T) {
	for _, c := range []struct {
		in   error
		want error
	}{
		{raft.ErrEnqueueTimeout, ErrBusy},
		{fmt.Errorf("apply: %w", raft.ErrEnqueueTimeout), ErrBusy},
		{raft.ErrLeadershipLost, ErrNotLeader},
		{raft.ErrNotLeader, ErrNotLeader},
		{raft.ErrRaftShutdown, ErrShutdown},
	} {
		if got := mapErr(c.in); !errors.Is(got, c.want) {
			t.Errorf("mapErr(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
