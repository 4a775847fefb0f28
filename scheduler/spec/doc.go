// Package spec owns what users write: the job spec types, their YAML and JSON
// decoding (unknown fields are rejected), defaults, and validation that
// reports every problem with its field path ("resources.gpus: must be >= 1,
// got -1").
//
// The types here are the single wire form of a job spec: the CLI decodes and
// validates them locally, the server validates them again, and the state
// store keeps them inside the job record.
package spec
