package api

import "time"

// JobEvent is one thing that happened to a job: its time and Raft index
// come from the command that changed the job, never from the clock of the
// server that applied it, so every server records the same list.
type JobEvent struct {
	Time    time.Time `json:"time"`
	Index   uint64    `json:"index"`
	Type    string    `json:"type"`
	Message string    `json:"message"`
}

// MaxJobEvents is how many events a job keeps (the oldest go first).
const MaxJobEvents = 64

// Job event types.
const (
	EventSubmitted  = "submitted"
	EventPlaced     = "placed"     // ranks (or a service's replacement replicas) placed on nodes
	EventStarted    = "started"    // every rank of an attempt running; a service replica running
	EventCheckpoint = "checkpoint" // the newest checkpoint a rank reported (one event, updated in place)
	EventRestarting = "restarting" // a gang going back to the queue after a rank failed or was lost
	EventPreempted  = "preempted"  // evicted for another job
	EventPreempting = "preempting" // evicting other jobs to make room
	EventMigrated   = "migrated"   // moved off a draining node
	EventReplica    = "replica"    // a service replica ended or was lost, and is replaced
	EventScaled     = "scaled"
	EventUpdated    = "updated"
	EventRollout    = "rollout" // a rollout's step, success or failure
	EventSucceeded  = "succeeded"
	EventFailed     = "failed"
	EventCancelled  = "cancelled"
)
