package cuda

import _ "embed" // kernels.cu

//go:embed kernels.cu
var kernelSource string

// kernelNames are the entry points of kernels.cu that the Device resolves.
var kernelNames = []string{
	"matmul_tiled", "add_bias_rows", "colsum", "layernorm_fwd", "layernorm_bwd_din", "layernorm_bwd_dw",
	"gelu_fwd", "gelu_bwd", "attention_fwd", "attention_bwd", "embedding_fwd", "embedding_bwd",
	"cross_entropy", "adamw", "add", "scale", "sum_squares", "to_bf16", "from_bf16",
	"lora_shrink", "lora_expand",
}
