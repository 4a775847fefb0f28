package api

import "time"

// ServiceReplica is the record of one replica (rank) of a service: how
// often its task ended by itself and was restarted, when its replacement
// may start, and how it last ended. A crash loop shows here (and in the
// job's reason) instead of ending the service.
type ServiceReplica struct {
	Rank int `json:"rank"`
	// Restarts counts the times the replica's task ended by itself (a
	// crash, an exit, a failed health check) and was replaced. Replicas
	// lost with their node, preempted or moved off a draining node are
	// replaced without counting.
	Restarts int `json:"restarts"`
	// Streak counts the restarts in a row, each after a run shorter than
	// the backoff reset (ten minutes): the backoff doubles with it.
	Streak int `json:"streak,omitempty"`
	// RestartAfter holds the replacement back until its backoff passed.
	RestartAfter *time.Time `json:"restartAfter,omitempty"`
	// LastExitCode, LastSignal and LastMessage are how the replica's
	// last counted run ended.
	LastExitCode *int   `json:"lastExitCode,omitempty"`
	LastSignal   string `json:"lastSignal,omitempty"`
	LastMessage  string `json:"lastMessage,omitempty"`
}

// Serving reports whether a allocation holds its rank of a service: it
// has not ended and the scheduler has not asked it to stop. A rank no
// allocation holds is missing, and the scheduler places a replacement
// for it.
func (a *Allocation) Serving() bool {
	return !a.Terminal() && a.DesiredStatus == DesiredRun
}

// Replica returns the record of a service replica (the zero record of
// that rank when it has none yet).
func (j *Job) Replica(rank int) ServiceReplica {
	for _, r := range j.ServiceReplicas {
		if r.Rank == rank {
			return r
		}
	}
	return ServiceReplica{Rank: rank}
}
