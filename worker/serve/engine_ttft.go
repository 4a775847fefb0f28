package serve

import (
	"slices"
	"sync"
	"time"
)

// ttftWindow keeps the times to the first token of the last
// ttftWindowSize requests: the load a replica reports (its p90) for the
// autoscaler.
type ttftWindow struct {
	mu   sync.Mutex
	ring []time.Duration
	next int
}

const ttftWindowSize = 256

func (w *ttftWindow) add(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ring) < ttftWindowSize {
		w.ring = append(w.ring, d)
		return
	}
	w.ring[w.next] = d
	w.next = (w.next + 1) % ttftWindowSize
}

// p90Ms is the window's 90th percentile in milliseconds, 0 when empty.
func (w *ttftWindow) p90Ms() float64 {
	w.mu.Lock()
	xs := slices.Clone(w.ring)
	w.mu.Unlock()
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return float64(xs[min(len(xs)-1, len(xs)*9/10)]) / float64(time.Millisecond)
}
