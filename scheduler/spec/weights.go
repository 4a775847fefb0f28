package spec

// The values of task.builtin.weights: how an inference server keeps the
// base model's weights. bf16 halves their memory and the bytes each
// decode step reads (at a few streams a step is bound by reading them),
// at 8 bits of mantissa per weight; activations and the KV cache stay
// float32.
const (
	WeightsFloat32 = "float32"
	WeightsBF16    = "bf16"
)

// KnownWeights says whether w is one of the values above.
func KnownWeights(w string) bool { return w == WeightsFloat32 || w == WeightsBF16 }

func validateWeights(j *Job, add func(path, format string, args ...any)) {
	b := j.Task.Builtin
	if b == nil || b.Weights == "" {
		return
	}
	if j.Kind != KindInference {
		add("task.builtin.weights", "is for inference jobs, not %s jobs", j.Kind)
	}
	if !KnownWeights(b.Weights) {
		add("task.builtin.weights", "must be %s or %s, got %q", WeightsFloat32, WeightsBF16, b.Weights)
	}
}
