package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
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

// Jitter is a backoff of d spread over [d/2, d], so that the many clients
// one election turned away (10,000 agents' heartbeats) do not all come
// back at the same instant.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// HeartbeatRetry is how long a node waits after its failures-th heartbeat
// in a row failed in a way worth retrying (Retryable) before it tries
// again: 1 s doubling, jittered, at most a sixth of the TTL, so that two
// more tries fit before the next regular beat would have been due. A
// failed beat is retried this way rather than after a whole pace, which
// would leave the node one chance fewer before the TTL runs out.
func HeartbeatRetry(ttl time.Duration, failures int) time.Duration {
	d := time.Second << min(max(failures-1, 0), 10)
	return Jitter(max(min(d, ttl/6), 100*time.Millisecond))
}

// Retryable reports whether a failed call may succeed if made again as it
// was: no answer (a timeout, a refused or reset connection) or a 5xx (a
// server without a leader, an election, a leader too busy to take the
// write). A 4xx answer would come again.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == http.StatusTooManyRequests
	}
	return true // no answer, or one cut off
}
