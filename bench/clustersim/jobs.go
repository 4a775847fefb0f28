package clustersim

import (
	"sync"
	"time"
)

// tracker follows every submitted job from its submission to its ranks
// running, and the GPU capacity the stream has asked for and not yet
// seen end (the demand the stream throttles on).
type tracker struct {
	mu       sync.Mutex
	cond     *sync.Cond
	capacity int64 // milli-GPUs of the whole cluster
	demand   int64
	jobs     map[string]*jobRec
}

type jobRec struct {
	shape     Shape     // what it still holds (Replicas counts down as ranks end)
	ranks     int       // its replicas
	submitted time.Time // when it was sent; zero until the servers took it
	room      bool      // the cluster had room for it when it was submitted
	running   int       // ranks reported running
	runningAt time.Time // when the last rank was
	seen      int       // ranks whose allocation reached its agent
	seenAt    time.Time // when the last rank's did
	ended     int       // ranks ended
}

func newTracker(capacity int64) *tracker {
	t := &tracker{capacity: capacity, jobs: map[string]*jobRec{}}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// reserve waits until the job fits in the cluster's capacity beside what
// runs or waits, or until stop says so; it returns whether the cluster had
// room below roomFrac of its capacity (the jobs whose latency the p99
// target is about) and false for ok when stopped.
func (t *tracker) reserve(s Shape, roomFrac float64, stop func() bool) (room, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.demand+s.Milli() > t.capacity {
		if stop() {
			return false, false
		}
		t.cond.Wait()
	}
	room = float64(t.demand+s.Milli()) <= roomFrac*float64(t.capacity)
	t.demand += s.Milli()
	return room, true
}

// wake lets waiting submitters look at stop again.
func (t *tracker) wake() { t.cond.Broadcast() }

// unreserve gives back a reservation whose submission failed.
func (t *tracker) unreserve(s Shape) {
	t.mu.Lock()
	t.demand -= s.Milli()
	t.mu.Unlock()
	t.cond.Broadcast()
}

// fill is the fraction of the capacity the stream holds.
func (t *tracker) fill() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return float64(t.demand) / float64(t.capacity)
}

func (t *tracker) rec(id string) *jobRec {
	r := t.jobs[id]
	if r == nil {
		r = &jobRec{}
		t.jobs[id] = r
	}
	return r
}

// submitted records a job the servers took. A rank may have been reported
// running before the answer came back.
func (t *tracker) submitted(id string, s Shape, at time.Time, room bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rec(id)
	r.shape, r.ranks, r.submitted, r.room = s, s.Replicas, at, room
	t.endedLocked(r, 0)
}

// running records one rank reported running.
func (t *tracker) running(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rec(id)
	stamp(&r.running, &r.runningAt, at)
}

// stamp counts one rank and keeps the latest time a rank was counted.
func stamp(n *int, last *time.Time, at time.Time) {
	*n++
	if at.After(*last) {
		*last = at
	}
}

// seen records one rank's allocation reaching its agent's long-poll.
func (t *tracker) seen(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rec(id)
	stamp(&r.seen, &r.seenAt, at)
}

// ended records one rank's end; the job's share of the demand is given back
// rank by rank.
func (t *tracker) ended(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endedLocked(t.rec(id), 1)
}

func (t *tracker) endedLocked(r *jobRec, n int) {
	r.ended += n
	if r.submitted.IsZero() || r.shape.Replicas == 0 {
		return // counted once the submission is recorded
	}
	give := min(r.ended, r.shape.Replicas)
	if give > 0 {
		t.demand -= r.shape.Milli() / int64(r.shape.Replicas) * int64(give)
		r.ended -= give
		r.shape.Replicas -= give // what is still held
		if r.shape.Replicas == 0 {
			r.shape.Replicas = -1 // fully given back; never again
		}
		t.cond.Broadcast()
	}
}

// latencies are the submit-to-running times (ms) of the jobs submitted
// while the cluster had room. A job not yet running at end counts with
// end-submitted, a lower bound (so a percentile never looks better for the
// jobs that never ran); notRunning says how many those are.
func (t *tracker) latencies(end time.Time) (ms []float64, notRunning int) {
	return t.latenciesBefore(time.Time{}, end)
}

// latenciesBefore is latencies for the jobs submitted before cut (all
// when cut is zero).
func (t *tracker) latenciesBefore(cut, end time.Time) (ms []float64, notRunning int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.jobs {
		if r.submitted.IsZero() || !r.room || (!cut.IsZero() && !r.submitted.Before(cut)) {
			continue
		}
		at := r.runningAt
		if r.running < r.ranks {
			notRunning++
			at = end
		}
		ms = append(ms, float64(at.Sub(r.submitted).Microseconds())/1000)
	}
	return ms, notRunning
}

// seenLatencies are the submit-to-seen times (ms) of the jobs submitted
// while the cluster had room whose every rank reached its agent: the
// servers' part of submit-to-running (commit, pass, plan commit,
// long-poll), without the agents' running reports.
func (t *tracker) seenLatencies() []float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ms []float64
	for _, r := range t.jobs {
		if r.submitted.IsZero() || !r.room || r.seen < r.ranks {
			continue
		}
		ms = append(ms, float64(r.seenAt.Sub(r.submitted).Microseconds())/1000)
	}
	return ms
}

// waiting counts the jobs submitted with room not yet running.
func (t *tracker) waiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.jobs {
		if !r.submitted.IsZero() && r.room && r.running < r.ranks {
			n++
		}
	}
	return n
}
