// Package cluster wires hashicorp/raft for Ark's servers: the raft-boltdb
// log and stable store (fsync on every write), the file snapshot store, the
// transport (mutual TLS through tlsStream when given a config; plain TCP
// only on loopback or with InsecureRaft, since an unauthenticated Raft port
// lets anyone commit anything), single-voter bootstrap for dev, and the
// write path (apply a command, map raft.ErrNotLeader to ErrNotLeader so
// callers can forward), and the offline recovery of a cluster that lost its
// quorum (Recover: the configuration rewritten from a peers file).
// Raft's own logs go through zap via an hclog adapter.
//
// A server may advertise a Raft address other than the one it binds,
// a DNS name kept as a name and looked up at each dial, so that a server
// that comes back on a new IP keeps its identity (advertise.go).
//
// It knows nothing about what the commands mean: that is package state.
// Multi-server formation (join, remove, leader forwarding) builds on Node
// without changing this shape.
package cluster
