// Package checkpoint stores training checkpoints in a storage.Store: a set
// of shards (one or more per rank) and a JSON manifest written last, with
// the size and SHA-256 of every shard and an index of the tensors in them.
// A checkpoint without a valid manifest does not exist to readers; readers
// verify checksums and name the corrupt shard.
//
// Layout, under the store root:
//
//	JOB/STEP/SHARD        shard objects (STEP is the step as 12 digits)
//	JOB/STEP/MANIFEST.json
//
// How a location is spelled (STORE/NAMESPACE/JOB/STEP, the 12-digit step,
// path elements before a store URI's ?query) is package ckptpath's, which
// the scheduler's pure pass shares.
//
// Save writes a checkpoint synchronously; AsyncWriter copies it to host
// memory (the only pause the trainer sees) and streams it in the
// background, one in flight per job with back-pressure. List, Latest and
// Retain find checkpoints, resume from the newest complete one and keep
// the newest N; Copy copies one to another store as stored, checking each
// shard on the way and writing the manifest last. Shards can be sealed with AES-256-GCM (package crypt); the
// manifest names the key id. See DESIGN.md for the format.
package checkpoint
