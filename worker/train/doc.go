// Package train is Ark's builtin training runtime: a small GPT-style decoder
// (byte-level tokens) computed on a kernels.Device, a deterministic data
// loader over a text file, a data-parallel training loop whose gradients are
// all-reduced in buckets through collective while backward still runs,
// checkpoints streamed to storage with resume from the newest complete one,
// held-out evaluation and text generation.
//
// See DESIGN.md for the parameter layout, the bucket order and the
// checkpoint contents.
package train
