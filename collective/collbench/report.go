package collbench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes res as one JSON object.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func size(b int) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}

// WriteMarkdown prints the environment, one nccl-tests-like table per
// (ranks, transport), the tuning pass and the summary.
func WriteMarkdown(w io.Writer, res *Result) error {
	var b strings.Builder
	e := res.Env
	fmt.Fprintf(&b, "# ark bench allreduce\n\n")
	fmt.Fprintf(&b, "| environment | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPU | %s |\n| cores / GOMAXPROCS | %d / %d |\n| GPU | %s |\n| Go | %s |\n| commit | %s |\n",
		e.CPU, e.Cores, e.GOMAXPROCS, e.GPU, e.Go, e.Commit)
	fmt.Fprintf(&b, "| timing | mean per call over a loop, slowest rank, best of %d loops |\n", trials)
	fmt.Fprintf(&b, "| ranks | %s |\n| channels / chunk | %d / %s |\n| op | all-reduce, float32, sum, in place |\n\n", res.Mode, e.Channels, size(e.ChunkBytes))
	var cur string
	for _, r := range res.Rows {
		key := fmt.Sprintf("%d/%s", r.Ranks, r.Transport)
		if key != cur {
			cur = key
			fmt.Fprintf(&b, "\n## %d ranks, %s (point-to-point stream %.2f GB/s one way, %.2f GB/s per direction both ways)\n\n", r.Ranks, r.Transport, r.P2P, r.P2PBidir)
			fmt.Fprintf(&b, "| size | count | algo | time (us) | algbw (GB/s) | busbw (GB/s) | busbw / p2p | busbw / p2p both ways |\n")
			fmt.Fprintf(&b, "|---:|---:|---|---:|---:|---:|---:|---:|\n")
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.1f | %.3f | %.3f | %.0f%% | %.0f%% |\n",
			size(r.Bytes), r.Count, r.Algo, r.TimeUS, r.AlgBW, r.BusBW, 100*r.BusFrac, 100*r.BidirFrac)
	}
	if len(res.Tuning) > 0 {
		fmt.Fprintf(&b, "\n## Tuning pass: recursive doubling vs ring (us)\n\n| ranks | transport | crossover |")
		for _, s := range res.Tuning[0].Sizes {
			fmt.Fprintf(&b, " %s |", size(s.Bytes))
		}
		fmt.Fprintf(&b, "\n|---|---|---|%s\n", strings.Repeat("---|", len(res.Tuning[0].Sizes)))
		for _, t := range res.Tuning {
			cross := "rd throughout"
			if t.Crossover > 0 {
				cross = size(t.Crossover)
			}
			fmt.Fprintf(&b, "| %d | %s | %s |", t.Ranks, t.Transport, cross)
			for _, s := range t.Sizes {
				fmt.Fprintf(&b, " %.0f / %.0f |", s.RDus, s.RingUS)
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "\n## Summary\n\nFor 2 ranks the largest all-reduce is timed again interleaved with the point-to-point streams (best of 5 rounds each).\n\n| figure | value |\n|---|---|\n")
	for _, s := range res.Runs {
		fmt.Fprintf(&b, "| busbw at %s, %d ranks %s | %.3f GB/s = %.0f%% of p2p one way (%.3f GB/s), %.0f%% of p2p both ways (%.3f GB/s per direction) (run %.1f s) |\n",
			size(s.MaxBytes), s.Ranks, s.Transport, s.BusBW, 100*s.Fraction, s.P2P, 100*s.BidirFrac, s.P2PBidir, s.WallSecond)
	}
	fmt.Fprintf(&b, "| 8-byte all-reduce, 2 ranks %s (timed interleaved with the round trip) | %.1f us |\n", res.LatencyTransport, res.SmallLatencyUS)
	if res.SmallLatencyShmUS > 0 {
		fmt.Fprintf(&b, "| 8-byte all-reduce, 2 ranks shm (sweep) | %.1f us |\n", res.SmallLatencyShmUS)
	}
	fmt.Fprintf(&b, "| TCP round trip (8 B ping-pong, 2 processes, plain socket) | %.1f us |\n", res.TCPRTTus)
	fmt.Fprintf(&b, "| 8-byte latency / TCP RTT | %.2fx |\n", res.LatencyOverRTT)
	if o := res.Overlap; o != nil {
		fmt.Fprintf(&b, "| overlap efficiency, device-style compute (%d x %s buckets, %s) | %.0f%% (comm %.1f ms, compute %.1f ms, both %.1f ms) |\n",
			o.Buckets, size(o.BucketBytes), o.Transport, 100*o.Efficiency, o.CommMS, o.ComputeMS, o.BothMS)
		fmt.Fprintf(&b, "| overlap efficiency, CPU compute on the same cores | %.0f%% (compute %.1f ms, both %.1f ms) |\n",
			100*o.CPUEff, o.CPUCompute, o.CPUBoth)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
