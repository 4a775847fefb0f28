package placementsim

import (
	"fmt"
	"hash/fnv"
)

// The over-time simulation's seed (Options.OverTimeSeed) varies what the
// openb trace does not say, so a setting tuned on one draw can be checked
// on others of the same trace:
//
//   - the queue each task belongs to (openb has no queue field: QueueOf);
//   - the factor its declared maxRuntime over-estimates the real one by
//     (overestimate), which shortest-first order and backfill read;
//   - the order of tasks created in the same trace second (the trace
//     says nothing finer);
//   - when the copies of --copies arrive: copy c >= 1 of a task comes up
//     to a jitter (Options.OverTimeCopyJitter, default CopyJitter) of
//     trace seconds after copy c-1's time, instead of exactly c seconds
//     after the original. A jitter of 0 keeps the copies' times and draws
//     the rest: the FIFO baseline reads only the order and the copy
//     times, so this separates what moves it from what moves the pass.
//
// What the trace does say stays as it is: every task's shape, qos (so its
// priority class), creation time (copy 0) and duration. Seed 0 draws
// nothing: the hashes, order and copy times are those the recorded tables
// were made with, byte for byte.

// CopyJitter is the default bound of a seeded copy's delay in trace
// seconds: one day keeps the trace's daily load shape and moves a task by
// at most 4.3 s of simulated time at --time-scale 20000 (under one 10 s
// pass).
const CopyJitter = 86400

// draw is a 64-bit number about name for a purpose (what: a label, so
// draws about the same task are independent): FNV-1a 64 of name + what,
// the recorded tables' hash, with seed 0; that hash mixed with the seed
// by splitmix64's finaliser otherwise. Not the seed written into the
// hashed text: FNV-1a mixes too little, and queues drawn that way (modulo
// 3) agreed between seeds on half the tasks, not a third.
func draw(name, what string, seed uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte(what))
	if seed == 0 {
		return h.Sum64()
	}
	return mix64(h.Sum64() ^ mix64(seed))
}

// mix64 is splitmix64's finaliser: every input bit moves every output bit.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unitDraw is draw as a number uniform in [0, 1).
func unitDraw(name, what string, seed uint64) float64 {
	return float64(draw(name, what, seed)>>11) / (1 << 53)
}

// tieRank orders tasks created in the same second: 0 for every task with
// seed 0 (the stable sort keeps the list's order), a draw otherwise.
func tieRank(name string, seed uint64) float64 {
	if seed == 0 {
		return 0
	}
	return unitDraw(name, "/order", seed)
}

// copyPods submits list copies times: copy c >= 1 of each task is named
// NAME-copy-c and arrives, is scheduled and is deleted c seconds after the
// original (seed 0, or jitter 0) or, with a seed, c seconds plus a draw
// in [0, jitter) trace seconds after copy c-1 (same duration either way).
func copyPods(list []Pod, copies int, seed uint64, jitter float64) []Pod {
	n := len(list)
	out := append(make([]Pod, 0, n*max(copies, 1)), list...)
	shift := make([]int64, n) // copy c-1's delay of each task
	for c := 1; c < copies; c++ {
		for i, p := range list[:n] {
			shift[i]++
			if seed != 0 && jitter > 0 {
				shift[i] += int64(unitDraw(p.Name, fmt.Sprintf("/copy/%d", c), seed) * jitter)
			}
			p.Name = fmt.Sprintf("%s-copy-%d", p.Name, c)
			p.Created += shift[i]
			if p.Scheduled > 0 {
				p.Scheduled += shift[i]
			}
			p.Deleted += shift[i]
			out = append(out, p)
		}
	}
	return out
}
