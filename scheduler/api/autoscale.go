package api

import "time"

// ReplicaLoad is what a service replica last reported of its load (its
// health check's JSON answer: {"running": N, "waiting": M,
// "ttftP90Ms": X}); agents send them with their heartbeats, and the
// leader's autoscaler reads them (never written to Raft).
type ReplicaLoad struct {
	AllocID   string  `json:"allocId"`
	Running   int     `json:"running"`
	Waiting   int     `json:"waiting"`
	TTFTP90Ms float64 `json:"ttftP90Ms,omitempty"`
	// Requests counts the requests the replica has answered since it
	// started: an idle replica's count stays put.
	Requests int64 `json:"requests"`
}

// HeartbeatRequest is the (optional) body of PUT /v1/nodes/{id}/heartbeat.
type HeartbeatRequest struct {
	Loads []ReplicaLoad `json:"loads,omitempty"`
}

// ScaleEvent is a change of a service's replica count by its
// autoscaler (or a request to a service scaled to zero).
type ScaleEvent struct {
	From   int       `json:"from"`
	To     int       `json:"to"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}
