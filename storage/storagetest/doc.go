// Package storagetest is the conformance suite every storage backend
// passes: Run(t, newStore) checks puts of known and unknown size, atomic
// replacement, aborted uploads (no object, no dangling partial upload),
// ranged reads, listing by prefix, deletion, key validation and concurrent
// writers.
//
// It also holds the helper S3 tests use to find the test S3 server from the
// environment (S3FromEnv), which skips loudly when none is configured and
// fails when CI=true.
package storagetest
