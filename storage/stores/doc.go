// Package stores opens a storage.Store from a URI: file://DIR (or a plain
// path) and s3://BUCKET/PREFIX. It is the one place that knows every
// backend, so the CLI, the agent and the trainer take a URI and stay
// backend-agnostic.
package stores
