package ckptbench

import (
	"context"
	"fmt"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
)

// simulate runs a training loop that checkpoints every interval, first
// saving synchronously (the loop waits for the store), then through an
// AsyncWriter (the loop waits for the copy to host memory only), and
// records the stall per checkpoint. Compute between checkpoints is a
// sleep, as it is for the host while a GPU computes. The interval is 1.5x
// the synchronous save time, so in steady state the async upload finishes
// before the next checkpoint (no back-pressure).
func simulate(ctx context.Context, cfg Config, s storage.Store, st *checkpoint.State, res *Result) error {
	const stepBase = 1000
	var syncStalls []float64
	for i := range cfg.Checkpoints {
		settle()
		st.Step = stepBase + int64(i)
		start := time.Now()
		if _, err := checkpoint.Save(ctx, s, st, checkpoint.SaveOptions{}); err != nil {
			return fmt.Errorf("bench ckpt: sync save: %w", err)
		}
		syncStalls = append(syncStalls, ms(time.Since(start)))
		if err := checkpoint.Delete(ctx, s, st.Ref()); err != nil {
			return fmt.Errorf("bench ckpt: %w", err)
		}
		cfg.logf("sync checkpoint %d: stall %.0f ms", i+1, syncStalls[i])
	}
	res.SyncStallMs = median(syncStalls)
	interval := time.Duration(res.SyncStallMs * 3 * float64(time.Millisecond))
	res.IntervalMs = ms(interval)

	settle()
	// The trainer knows its checkpoint size and reserves staging memory
	// when it starts, as it would pin host memory for GPU copies.
	w := checkpoint.NewAsyncWriter(s, checkpoint.AsyncOptions{Keep: 1, Reserve: st.Bytes()})
	var stalls, copies, uploads, waits []float64
	var pending []*checkpoint.Pending
	for i := range cfg.Checkpoints {
		st.Step = 2*stepBase + int64(i)
		start := time.Now()
		p, err := w.Save(ctx, st)
		if err != nil {
			w.Abort()
			return fmt.Errorf("bench ckpt: async save: %w", err)
		}
		stall := time.Since(start)
		stalls = append(stalls, ms(stall))
		pending = append(pending, p)
		cfg.logf("async checkpoint %d: stall %.0f ms", i+1, ms(stall))
		select { // compute until the next checkpoint
		case <-time.After(interval - stall):
		case <-ctx.Done():
			w.Abort()
			return ctx.Err()
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("bench ckpt: async save: %w", err)
	}
	for _, p := range pending {
		r, err := p.Wait(ctx)
		if err != nil {
			return fmt.Errorf("bench ckpt: async save: %w", err)
		}
		copies = append(copies, ms(r.Copy))
		waits = append(waits, ms(r.Stall-r.Copy))
		uploads = append(uploads, ms(r.Upload))
	}
	checkpoint.Retain(ctx, s, st.Job, 1)
	if err := checkpoint.Delete(ctx, s, st.Ref()); err != nil {
		return fmt.Errorf("bench ckpt: %w", err)
	}
	res.AsyncStallMs = median(stalls)
	res.AsyncStallMaxMs = max(stalls[0], stalls[len(stalls)-1])
	for _, x := range stalls {
		res.AsyncStallMaxMs = max(res.AsyncStallMaxMs, x)
	}
	res.AsyncCopyMs = median(copies)
	res.AsyncWaitMs = median(waits)
	res.AsyncUploadMs = median(uploads)
	res.StallFrac = res.AsyncStallMs / res.SyncStallMs
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
