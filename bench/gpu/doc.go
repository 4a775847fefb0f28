// Package gpu holds bench/gpu/check.sh, the one prepared script a lent GPU
// machine runs (inventory, CUDA conformance, SGEMM, the trainer on the GPU,
// serving, CPU scaling), and the test that runs it without a GPU in CI so
// it cannot rot. The package has no Go code of its own.
package gpu
