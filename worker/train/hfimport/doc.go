// Package hfimport brings a GPT-2 model in the Hugging Face layout (a
// directory with config.json, model.safetensors and tokenizer.json, or
// vocab.json and merges.txt) into Ark's checkpoint format, so the builtin
// runtime can generate with it, serve it, evaluate it and fine-tune it.
//
// GPT-2 is the architecture Ark's own decoder already has (learned
// positions, pre-LayerNorm blocks with eps 1e-5, a 4x MLP with the tanh
// GELU, output tied to the token embedding); the import is a renaming and,
// because GPT-2's Conv1D layers store weights [in, out] and Ark's linear
// layers [out, in], a transpose of the four matrices of each block.
// Anything the runtime would compute differently is refused rather than
// approximated: another model_type or activation, a different epsilon,
// untied output weights, a missing, unknown or misshapen tensor, a dtype
// other than F32, F16, BF16 or F64.
package hfimport
