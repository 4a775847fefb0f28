package collective_test

import (
	"context"
	"testing"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

// TestTuningPass: with Tune, every rank ends the start-up tuning pass with
// the same measured crossover (rank 0's), auto then picks by it, and the
// results stay right on both sides of it; a SmallMax or Algo the caller
// set is kept without a pass.
func TestTuningPass(t *testing.T) {
	for _, tr := range []string{"tcp", "shm"} {
		t.Run(tr, func(t *testing.T) {
			comms := collectivetest.StartGroup(t, 3, collective.Options{TransportName: tr, Tune: true})
			want := comms[0].Crossover()
			if want != 8 && (want < 4<<10 || want > 1<<20) {
				t.Fatalf("crossover %d: not a size the pass times", want)
			}
			for r, c := range comms {
				if got := c.Crossover(); got != want {
					t.Fatalf("rank %d crossover %d, rank 0 %d", r, got, want)
				}
			}
			for _, n := range []int{1, want/4 + 3, 2*want/4 + 5} {
				errs := collectivetest.Each(comms, func(r int, c *collective.Communicator) error {
					buf := make([]float32, n)
					for i := range buf {
						buf[i] = float32(r + 1)
					}
					if err := c.AllReduce(context.Background(), collective.Float32s(buf), collective.Sum); err != nil {
						return err
					}
					for i, v := range buf {
						if v != 6 {
							t.Errorf("rank %d: element %d of %d is %v, want 6", r, i, n, v)
							break
						}
					}
					return nil
				})
				for r, err := range errs {
					if err != nil {
						t.Fatalf("rank %d: %v", r, err)
					}
				}
			}
		})
	}
	comms := collectivetest.StartGroup(t, 2, collective.Options{TransportName: "tcp", Tune: true, SmallMax: 12345})
	if got := comms[1].Crossover(); got != 12345 {
		t.Errorf("SmallMax set: crossover %d, want 12345 (no pass)", got)
	}
}
