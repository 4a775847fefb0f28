// Package placement decides where jobs run. It is pure: a snapshot of nodes
// and live allocations plus the pending jobs go in, a plan comes out, with a
// reason for every job it cannot place. No Raft, network, clock or unseeded
// randomness (a test checks its imports).
//
// The pipeline, top to bottom:
//
//   - engine.go: Place, the leader's pass over pending jobs (api types in,
//     Result out); FirstFit (firstfit.go) is the foundation's policy, kept
//     as a baseline.
//   - packing.go, reasons.go: NodeState (what a node has free, per GPU in
//     milli-GPU; Take and Release apply one task) and Task (one replica: CPU, memory, whole GPUs or a share
//     of one); the feasibility checkers, each returning a Rule, run by
//     NodeState.Check, the one per-node check the planner, the
//     explanation and Fit share; Reason ({rule, nodes, detail}) and
//     Explanation, a pending job's reasons counted per rule, rendered to
//     text in one place (Explanation.Text).
//   - explain.go: why a gang stays pending (explainGang): per-node rules
//     counted over the job's view of the nodes, then the gang's own
//     (sameNode, NVLink per replica, one fabric, replicas' room in all),
//     and the verdict on the idle cluster ("cannot fit on this cluster").
//   - policy.go, fgd.go, ark.go: the scorers. FGD (Weng et al., ATC'23) as
//     the reference simulator scores it; best fit, first fit and seeded
//     random as baselines; Ark's default (online-learned shapes, memory in
//     the fragmentation measure, exact GPU choice, CPU-only tasks packed).
//   - node_index.go: NodeIndex indexes nodes by GPU state, then by free CPU
//     and memory, so each GPU state is checked once and each node state
//     scored once (hundreds of thousands of placements/s on 10,000
//     nodes); gang.go places gangs all-or-nothing (one node and NVLink
//     domain, then fewest nodes in one fabric; inference spread).
//   - view_cache.go: ViewCache keeps a pass's NodeIndex per kind of job
//     for the next pass, which re-reads only the nodes that changed.
//   - preempt.go, backfill.go: for a job that fits nowhere, the gangs to
//     evict (lower priority, or borrowed capacity a queue reclaims; least
//     work lost since their checkpoints; protected when just started),
//     and the room held for it while others backfill around it (Reserve,
//     from the declared maxRuntime of what runs). The leader passes the
//     clock-derived inputs (RunInfo) in; nothing here reads the time.
//   - queues.go: dominant resource fairness across queues (FairOrder) and
//     quota admission with borrowing (Admit).
//
// Fit and NodeUsage are the leader's check of a plan just before it
// commits (scheduler/sched.Verify); Fit sees a node as the planner does
// (jobStates) and runs the same checkers, so the planner and the check can
// never disagree on what fits. The FSM does not use them (it keeps plain
// arithmetic that never changes between versions). scheduler/sched runs
// Place as part of the leader's pass; bench/placementsim replays the openb
// trace through these policies.
package placement
