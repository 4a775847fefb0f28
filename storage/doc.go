// Package storage defines Ark's object store: the minimal interface every
// backend implements (Store), the optional capabilities a backend may add
// (found by type assertion, as database/sql/driver does), the sentinel errors
// and the key rules shared by all backends.
//
// Backends live in subpackages: filestore (file://DIR, the embedded default)
// and s3 (s3://BUCKET/PREFIX, any S3-compatible server through minio-go).
// Package stores opens either from a URI. Package storagetest is the
// conformance suite every backend passes, and package checkpoint builds the
// checkpoint format (shards plus a manifest written last) on top of a Store.
package storage
