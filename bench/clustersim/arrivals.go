package clustersim

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// arrivals paces an open-loop stream: submission times drawn as a Poisson
// process of rate per second, seeded, handed to the submitters through a
// queue deep enough that a slow server makes arrivals wait in it rather
// than slowing the offer (a closed loop offers whatever the servers take,
// so its latency figures never show a saturated control plane; one whose
// arrivals queue does).
type arrivals struct {
	rate float64
	rng  *rand.Rand
}

// arrivalQueue bounds the arrivals waiting for a free submitter; a stream
// that far behind is past saturation, and the pacer then waits (the lag
// figure says so).
const arrivalQueue = 1 << 16

func newArrivals(rate float64, seed uint64) *arrivals {
	return &arrivals{rate: rate, rng: rand.New(rand.NewPCG(seed, 0x6a09e667f3bcc909))}
}

// gap is the next inter-arrival time: exponential with mean 1/rate.
func (a *arrivals) gap() time.Duration {
	return time.Duration(a.rng.ExpFloat64() / a.rate * float64(time.Second))
}

// run sends the scheduled arrival times, from start, until ctx ends or
// stop says so, and then closes out.
func (a *arrivals) run(ctx context.Context, start time.Time, stop func() bool, out chan<- time.Time) {
	defer close(out)
	at := start
	timer := time.NewTimer(0)
	defer timer.Stop()
	for !stop() {
		at = at.Add(a.gap())
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		select {
		case out <- at:
		case <-ctx.Done():
			return
		}
	}
}

// ValidRate says whether r is a usable Config.Rate: 0 (closed loop) or a
// positive finite number of submissions per second.
func ValidRate(r float64) bool { return r == 0 || (r > 0 && !math.IsInf(r, 0)) }
