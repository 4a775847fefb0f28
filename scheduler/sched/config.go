package sched

import (
	"time"

	"github.com/ark-sched/ark/scheduler/placement"
)

// Config is the scheduler's part of a server's configuration.
type Config struct {
	// Queues are the configured queues; a queue not listed has weight 1
	// and no quota.
	Queues map[string]placement.Queue
	// NoPreemption stops pending jobs from evicting lower-priority (or
	// borrowed) work; NoBackfill stops holding nodes for the job at the
	// head of the line.
	NoPreemption bool
	NoBackfill   bool
	// PreemptMinRuntime is how long an allocation runs before it may be
	// preempted (anti-churn).
	PreemptMinRuntime time.Duration
	// PreemptHold is how long the nodes a preemption frees stay held for
	// the preemptor (DefaultPreemptHold when 0): long enough for victims
	// to checkpoint and stop, short enough that a preemptor that can no
	// longer be placed there (its node went down) does not idle them.
	PreemptHold time.Duration
	// MaxReservations is how many pending jobs a pass may hold nodes for
	// (backfill); DefaultReservations when 0.
	MaxReservations int
	// PreemptSearches bounds the victim searches of one pass
	// (DefaultPreemptSearches when 0; negative: no bound).
	PreemptSearches int
	// Order is the order of pending jobs within a queue: OrderShortestAll
	// (DefaultOrder, when empty), OrderShortest or OrderSubmission
	// (order.go).
	Order string
	// AgeAfter, with OrderShortest or OrderShortestAll, is how long a job
	// waits before it goes ahead of the jobs that have not waited as long,
	// in submission order, whatever its runtime and priority (when 0,
	// DefaultAgeAfter or DefaultAgeAfterAll, by order).
	AgeAfter time.Duration
	// AgeTiers, with OrderShortest, lifts a waiting job by one priority
	// (of those pending) every AgeAfter/(priorities pending) on its way
	// there, instead of all at once at AgeAfter (order.go).
	AgeTiers bool
	// ExplainDepth is how many jobs of a pass that keep waiting get their
	// pending reason rebuilt (DefaultExplainDepth when 0; negative: all);
	// deeper jobs keep their last reason (placement.Input.MaxExplain).
	ExplainDepth int
	// CheckpointStore is the URI under which jobs' checkpoints go.
	CheckpointStore string
}

// DefaultReservations is the backfill reservations a pass makes; see
// bench/README.md's over-time section for the measurements behind it.
const DefaultReservations = 1

// DefaultPreemptSearches is how many jobs of one pass may search for
// victims: each search rebuilds the cluster as the job sees it, and a deep
// queue of jobs that fit nowhere would otherwise make every pass cost one
// search per job. The rest are searched on the next pass, which the
// commit of this one's plan starts.
const DefaultPreemptSearches = 16

// DefaultExplainDepth is the waiting jobs a pass explains anew: a
// reason reads every node, and rebuilding thousands a pass was most of
// the pass's time in the openb over-time simulation (bench/README.md).
// Slurm's main scheduler looks at 100 jobs a cycle by default.
const DefaultExplainDepth = 128

// DefaultPreemptHold is how long a preemption's freed nodes stay held.
const DefaultPreemptHold = 10 * time.Minute

// Queue is a queue's configuration, or the default for one not listed.
func (c *Config) Queue(name string) placement.Queue {
	if q, ok := c.Queues[name]; ok {
		return q
	}
	return placement.Queue{Name: name, Weight: 1}
}

func (c *Config) preemptHold() time.Duration {
	if c.PreemptHold > 0 {
		return c.PreemptHold
	}
	return DefaultPreemptHold
}

func (c *Config) reservations() int {
	if c.MaxReservations > 0 {
		return c.MaxReservations
	}
	return DefaultReservations
}

func (c *Config) explainDepth() int { return bound(c.ExplainDepth, DefaultExplainDepth) }

func (c *Config) preemptSearches() int { return bound(c.PreemptSearches, DefaultPreemptSearches) }

// bound reads a configured bound: 0 takes the default, a negative value
// means no bound (0 to the pass).
func bound(v, def int) int {
	switch {
	case v < 0:
		return 0
	case v == 0:
		return def
	}
	return v
}
