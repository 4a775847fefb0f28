// Package spec owns what users write: the job spec types, their YAML and JSON
// decoding (unknown fields are rejected), defaults, and validation that
// reports every problem with its field path ("resources.gpus: must be >= 1,
// got -1"). It also owns the rule of which local paths a builtin task may
// read (readroots.go), shared by the driver that confines the task to
// them and the scheduler, which changes a running replica's adapters in
// place only within them.
//
// The types here are the single wire form of a job spec: the CLI decodes and
// validates them locally, the server validates them again, and the state
// store keeps them inside the job record.
package spec
