// Package collective is Ark's communication library: a Communicator that runs
// all-reduce, reduce-scatter, all-gather, broadcast and barrier across the ranks
// of a training job, on caller-owned float32 and bfloat16 buffers.
//
// It owns:
//   - rendezvous (rank 0 serves a small TCP rendezvous on MASTER_ADDR:MASTER_PORT
//     that exchanges the ranks' listen addresses, then stays up as the control
//     plane: heartbeats, abort notices and stall diagnosis);
//   - the Transport interface and its TCP and shared-memory implementations
//     (RDMA verbs and NCCL live in the rdma and nccl subpackages and are loaded
//     at run time), and the choice per peer under auto: shm on one host, rdma
//     between hosts where both ranks can open it (falling back to tcp on a
//     failed connect-time check), tcp otherwise;
//   - the algorithms (chunked, pipelined multi-channel ring; recursive doubling
//     for small messages) and their automatic choice;
//   - the progress engine: every byte moved and every reduction runs on
//     goroutines owned by the Communicator, never on the caller's, so a trainer
//     can overlap communication with compute through the non-blocking forms.
//
// Every operation has a deadline. A dead or stalled peer yields a *PeerError
// naming it on every rank before the deadline, and the Communicator stays
// failed until it is closed and rebuilt with New. See DESIGN.md in this
// directory for the wire protocol and the shared-memory layout.
package collective
