// Package placement decides where jobs run. It is pure: a snapshot of nodes
// and live allocations plus the pending jobs go in, a plan comes out, with a
// reason for every job it cannot place. No Raft, network, clock or unseeded
// randomness (a test checks its imports).
//
// The policy here is the foundation's first fit with all-or-nothing gangs;
// the placement issue replaces it with topology- and fragmentation-aware
// scoring behind the same Input and Result. Fit and NodeUsage are also what
// the FSM uses to re-check a plan before it commits, so the scheduler and
// the re-check can never disagree on what fits.
package placement
