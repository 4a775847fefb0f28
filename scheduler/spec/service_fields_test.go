package spec

import (
	"strings"
	"testing"
)

// TestServiceFieldErrors: update, autoscale, task.shutdownDelay,
// task.health.startupTimeout, task.builtin.rateLimit and
// task.builtin.weights are checked with
// their field paths, and refused on jobs that are not services.
func TestServiceFieldErrors(t *testing.T) {
	const svc = "name: s\nkind: inference\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [serve]}%s}\n"
	inf := func(extra, task string) string { return strings.Replace(svc, "%s", task, 1) + extra }
	cases := []struct {
		name, in, want string
	}{
		{"a valid service", inf("update: {maxParallel: 2, canary: 1, autoRevert: true}\nautoscale: {min: 0, max: 4, target: {queueDepth: 4}}\n", ", shutdownDelay: 5s"), ""},
		{"update on a batch job", "name: b\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [x]}}\nupdate: {maxParallel: 1}\n", "update: is for inference jobs"},
		{"maxParallel 0 after defaults is 1", inf("update: {maxParallel: 0}\n", ""), ""},
		{"negative maxParallel", inf("update: {maxParallel: -1}\n", ""), "update.maxParallel: must be between 1"},
		{"canary past replicas", inf("update: {canary: 3}\n", ""), "update.canary: must be between 0 and replicas (1), got 3"},
		{"minHealthyTime past the deadline", inf("update: {minHealthyTime: 20m, progressDeadline: 10m}\n", ""), "update.minHealthyTime"},
		{"autoscale min over max", inf("autoscale: {min: 5, max: 2, target: {queueDepth: 1}}\n", ""), "autoscale.min: must be between 0 and autoscale.max (2), got 5"},
		{"autoscale two targets", inf("autoscale: {max: 2, target: {queueDepth: 1, ttftMsP90: 300}}\n", ""), "autoscale.target: must set exactly one"},
		{"autoscale no target", inf("autoscale: {max: 2}\n", ""), "autoscale.target: must set exactly one"},
		{"replicas outside the bounds", inf("replicas: 6\nautoscale: {max: 4, target: {queueDepth: 1}}\n", ""), "replicas: must be within autoscale.min and autoscale.max (0..4)"},
		{"a window under a second", inf("autoscale: {max: 4, target: {queueDepth: 1}, scaleOutAfter: 10ms}\n", ""), "autoscale.scaleOutAfter: must be at least 1s"},
		{"shutdown delay too long", inf("", ", shutdownDelay: 2h"), "task.shutdownDelay: must be between 0 and 10m0s"},
		{"startup timeout under the interval", inf("", ", health: {http: {path: /h}, interval: 5s, startupTimeout: 1s}"), "task.health.startupTimeout: must be 0 (none) or at least the interval"},
		{"rate limit of zero", "name: s\nkind: inference\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, base: /b, rateLimit: {perModel: 0}}}\n", "task.builtin.rateLimit.perModel: must be a rate"},
		{"rate limit on a finetune", "name: f\nkind: finetune\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: /d, rateLimit: {perModel: 3}}}\n", "task.builtin.rateLimit: is for inference jobs"},
		{"bf16 weights", "name: s\nkind: inference\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, base: /b, weights: bf16}}\n", ""},
		{"float32 weights", "name: s\nkind: inference\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, base: /b, weights: float32}}\n", ""},
		{"unknown weights", "name: s\nkind: inference\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, base: /b, weights: fp8}}\n", `task.builtin.weights: must be float32 or bf16, got "fp8"`},
		{"weights on a finetune", "name: f\nkind: finetune\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: /d, weights: bf16}}\n", "task.builtin.weights: is for inference jobs"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.in))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
