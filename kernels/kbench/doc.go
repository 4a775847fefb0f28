// Package kbench measures Ark's kernels for `ark bench kernels`: GFLOP/s of
// matmul by size and thread count, attention and layernorm, with a naive
// triple-loop matmul measured in the same run as the baseline (this machine
// is shared and noisy, so ratios within one run are what compare). Every
// timed op is first checked against a plain reference, so a fast wrong
// kernel cannot report a figure.
package kbench
