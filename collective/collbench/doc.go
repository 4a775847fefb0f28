// Package collbench measures the collective library the way nccl-tests does:
// all-reduce time, algbw and busbw (algbw x 2(n-1)/n) per message size and
// the algorithm chosen, against the link's own limit measured in the same run
// (a point-to-point stream between two ranks over the same transport), plus
// the 8-byte latency against a raw TCP round trip, the ring/recursive-doubling
// crossover (the tuning pass) and the overlap efficiency of a
// compute+communicate loop. `ark bench allreduce` is a thin shell over Run.
//
// Ranks run as separate processes (the default: the caller supplies how to
// start one, e.g. re-executing the ark binary) or as goroutines of this
// process; either way they talk over real loopback TCP sockets and real
// /dev/shm rings.
package collbench
