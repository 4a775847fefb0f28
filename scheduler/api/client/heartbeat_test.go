package client

import (
	"testing"
	"time"
)

func TestHeartbeatTTLAndPace(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultHeartbeatTTL, "junk": DefaultHeartbeatTTL, "-3s": DefaultHeartbeatTTL, "1m0s": time.Minute, "10s": 10 * time.Second} {
		if got := HeartbeatTTL(in); got != want {
			t.Errorf("HeartbeatTTL(%q) = %v, want %v", in, got, want)
		}
	}
	// A third of the TTL, less at most a fifth of that: never later than
	// a third (three chances), and spread.
	seen := map[time.Duration]bool{}
	for range 200 {
		d := HeartbeatPace(60 * time.Second)
		if d > 20*time.Second || d < 16*time.Second {
			t.Fatalf("pace %v for a 60s TTL, want 16-20s", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct paces in 200: not spread", len(seen))
	}
}
