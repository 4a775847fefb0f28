package client

import (
	"math/rand/v2"
	"time"
)

// DefaultHeartbeatTTL is the TTL a node assumes when the servers name
// none (an older server, or an answer it cannot read).
const DefaultHeartbeatTTL = 10 * time.Second

// HeartbeatTTL reads the TTL of a registration or heartbeat answer. The
// servers grow it with the cluster (scheduler/server heartbeat.go), so a
// node takes it from every answer, not only from its registration.
func HeartbeatTTL(s string) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return DefaultHeartbeatTTL
}

// HeartbeatPace is how long a node waits before its next heartbeat: a
// third of the TTL (three chances before it is marked down), less up to a
// fifth of that at random, so that nodes that registered together (a
// cluster's agents after a restart) do not beat together ever after.
func HeartbeatPace(ttl time.Duration) time.Duration {
	third := ttl / 3
	return third - time.Duration(rand.Int64N(int64(third)/5+1))
}
