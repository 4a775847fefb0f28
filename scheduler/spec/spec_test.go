package spec

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// validYAML is a complete exec spec that Parse accepts.
const validYAML = `
name: hello-gang
kind: batch
replicas: 2
resources:
  gpus: 1
  gpuMemory: 20Gi
task:
  driver: exec
  exec:
    command: [sh, -c, "echo $RANK"]
    env: {FOO: bar}
`

// validJSON is the smallest spec Parse accepts, as JSON.
const validJSON = `{"name":"j","kind":"finetune","resources":{"gpus":8},"task":{"driver":"exec","exec":{"command":["torchrun","train.py"]}}}`

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Job
	}{
		{
			name: "yaml with defaults",
			in:   validYAML,
			want: Job{
				Name: "hello-gang", Namespace: "default", Queue: "default", Kind: KindBatch, Priority: 50, Replicas: 2,
				Resources: Resources{GPUs: 1, GPUMemory: "20Gi", CPU: "1", Memory: "1Gi"},
				Topology:  Topology{NVLink: PrefPreferred, RDMA: PrefPreferred},
				Task: Task{Driver: DriverExec, Exec: &ExecTask{
					Command: []string{"sh", "-c", "echo $RANK"}, Env: map[string]string{"FOO": "bar"},
				}},
				Checkpoint: Checkpoint{Store: "default"},
				Restart:    Restart{Backoff: Duration(10 * time.Second)},
			},
		},
		{
			name: "json, replicas defaulted to 1",
			in:   validJSON,
			want: Job{
				Name: "j", Namespace: "default", Queue: "default", Kind: KindFinetune, Priority: 50, Replicas: 1,
				Resources:  Resources{GPUs: 8, CPU: "1", Memory: "1Gi"},
				Topology:   Topology{NVLink: PrefPreferred, RDMA: PrefPreferred},
				Task:       Task{Driver: DriverExec, Exec: &ExecTask{Command: []string{"torchrun", "train.py"}}},
				Checkpoint: Checkpoint{Store: "default"},
				Restart:    Restart{Backoff: Duration(10 * time.Second)},
			},
		},
		{
			name: "everything set, numbers as quantities, duration in seconds",
			in: `
name: ft
namespace: nlp
queue: research
kind: inference
priority: 1000
replicas: 4096
resources: {gpus: 64, gpuMemory: 80Gi, gpuModel: H200, cpu: 0.5, memory: 2048}
topology: {sameNode: true, nvlink: required, rdma: none}
task: {driver: exec, exec: {command: [serve], workDir: srv}}
checkpoint: {store: s3-main, every: 50, keep: 3}
restart: {maxRestarts: 100, backoff: 1.5}
`,
			want: Job{
				Name: "ft", Namespace: "nlp", Queue: "research", Kind: KindInference, Priority: 1000, Replicas: 4096,
				Resources:  Resources{GPUs: 64, GPUMemory: "80Gi", GPUModel: "H200", CPU: "0.5", Memory: "2048"},
				Topology:   Topology{SameNode: true, NVLink: PrefRequired, RDMA: PrefNone},
				Task:       Task{Driver: DriverExec, Exec: &ExecTask{Command: []string{"serve"}, WorkDir: "srv"}, ShutdownDelay: DefaultShutdownDelay},
				Checkpoint: Checkpoint{Store: "s3-main", Every: 50, Keep: 3},
				Restart:    Restart{MaxRestarts: 100, Backoff: Duration(1500 * time.Millisecond)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", *got, tt.want)
			}
			if got.GPUsTotal() != tt.want.Replicas*tt.want.Resources.GPUs {
				t.Errorf("GPUsTotal = %d", got.GPUsTotal())
			}
		})
	}
}

// badSpecs are specs that Parse refuses, with the whole error it gives.
var badSpecs = []struct {
	name string
	in   string
	want string
}{
	{"empty", "", "spec is empty"},
	{"blank", " \n\t\n", "spec is empty"},
	{"list", "- a\n- b\n", "spec must be a mapping of fields, got array"},
	{"scalar", "42", "spec must be a mapping of fields, got number"},
	{"string", `"hello"`, "spec must be a mapping of fields, got string"},
	{"null", "null", "spec must be a mapping of fields, got null"},
	{"malformed yaml", "name: [a\n", "malformed spec: "},
	{"malformed json", `{"name": "a",`, "malformed spec: "},
	{"duplicate key", "name: a\nname: b\n", "malformed spec: "},
	{"duplicate key json", `{"name":"a","kind":"batch","name":"b"}`, "malformed spec: "},
	{"unknown top-level field", strings.Replace(validYAML, "replicas: 2", "replica: 2", 1),
		`replica: unknown field (did you mean "replicas"?)`},
	{"unknown nested field", strings.Replace(validYAML, "command:", "comand:", 1),
		`task.exec.comand: unknown field (did you mean "command"?)`},
	{"wrong case is unknown", strings.Replace(validYAML, "gpus: 1", "GPUs: 1", 1),
		`resources.GPUs: unknown field (did you mean "gpus"?)`},
	{"unknown field far from any", strings.Replace(validYAML, "kind: batch", "kind: batch\nwhatever: 1", 1),
		`whatever: unknown field`},
	{"every unknown field at once", strings.Replace(validJSON, `{"gpus":8}`, `{"gpus":8,"gpuz":2},"zzz":1`, 1),
		`resources.gpuz: unknown field (did you mean "gpus"?); zzz: unknown field`},
	{"gpus is a string", strings.Replace(validYAML, "gpus: 1", `gpus: "one"`, 1),
		"resources.gpus: must be an integer, got string \"one\""},
	{"number inside the command list", strings.Replace(validYAML, `command: [sh, -c, "echo $RANK"]`, "command: [python, train.py, --epochs, 3]", 1),
		`task.exec.command[3]: must be a string, got number 3 (quote it: "3")`},
	{"number as an env value", strings.Replace(validYAML, "env: {FOO: bar}", "env: {FOO: bar, OMP_NUM_THREADS: 4}", 1),
		`task.exec.env.OMP_NUM_THREADS: must be a string, got number 4 (quote it: "4")`},
	{"gpus is fractional", strings.Replace(validYAML, "gpus: 1", "gpus: 1.5", 1),
		"resources.gpus: must be an integer, got number 1.5"},
	{"command is a string", strings.Replace(validYAML, `command: [sh, -c, "echo $RANK"]`, "command: train.sh", 1),
		`task.exec.command: must be a list, got string "train.sh"`},
	{"env is a list", strings.Replace(validYAML, "env: {FOO: bar}", "env: [FOO]", 1),
		"task.exec.env: must be a mapping, got a list"},
	{"resources is a string", "name: a\nkind: batch\nresources: lots\n",
		`resources: must be a mapping, got string "lots"; task.driver: is required (exec or builtin)`},
	{"quantity is a bool", strings.Replace(validYAML, "gpuMemory: 20Gi", "gpuMemory: true", 1),
		`resources.gpuMemory: must be a quantity such as "20Gi", "500m" or 2, got bool`},
	{"sameNode is a string", strings.Replace(validYAML, "resources:", "topology: {sameNode: \"yes\"}\nresources:", 1),
		"topology.sameNode: must be true or false, got string \"yes\""},
	{"backoff is not a duration", strings.Replace(validYAML, "kind: batch", "kind: batch\nrestart: {backoff: soon}", 1),
		`restart.backoff: must be a duration such as "30s" or "2m", got string "soon"`},
	{"backoff out of range", strings.Replace(validYAML, "kind: batch", "kind: batch\nrestart: {backoff: 1e300}", 1),
		`restart.backoff: must be a duration such as "30s" or "2m", got number 1e+300`},
	{"gpus 0", strings.Replace(validYAML, "gpus: 1", "gpus: 0", 1), "resources.gpus: must be >= 1, got 0"},
	{"gpus -1", strings.Replace(validYAML, "gpus: 1", "gpus: -1", 1), "resources.gpus: must be >= 1, got -1"},
	{"gpus too many", strings.Replace(validYAML, "gpus: 1", "gpus: 65", 1), "resources.gpus: must be <= 64 per replica, got 65"},
	{"gpus missing", strings.Replace(validYAML, "gpus: 1", "", 1), "resources.gpus: must be >= 1, got 0"},
	{"replicas negative", strings.Replace(validYAML, "replicas: 2", "replicas: -1", 1), "replicas: must be >= 1, got -1"},
	{"replicas too many", strings.Replace(validYAML, "replicas: 2", "replicas: 4097", 1), "replicas: must be <= 4096, got 4097"},
	{"priority too high", strings.Replace(validYAML, "replicas: 2", "priority: 1001", 1), "priority: must be between 0 and 1000, got 1001"},
	{"unknown kind", strings.Replace(validYAML, "kind: batch", "kind: training", 1),
		`kind: must be one of finetune, eval, inference, batch, got "training"`},
	{"missing kind", strings.Replace(validYAML, "kind: batch", "", 1),
		"kind: is required (one of finetune, eval, inference, batch)"},
	{"missing name", strings.Replace(validYAML, "name: hello-gang", "", 1), "name: is required"},
	{"bad name", strings.Replace(validYAML, "name: hello-gang", "name: Hello_Gang", 1),
		`name: must be lowercase letters, digits and '-', starting and ending with a letter or digit, got "Hello_Gang"`},
	{"long name", strings.Replace(validYAML, "name: hello-gang", "name: "+strings.Repeat("a", 64), 1),
		"name: must be at most 63 characters, got 64"},
	{"bad namespace", strings.Replace(validYAML, "name: hello-gang", "name: hello-gang\nnamespace: -x", 1),
		`namespace: must be lowercase letters, digits and '-', starting and ending with a letter or digit, got "-x"`},
	{"unknown driver", strings.Replace(validYAML, "driver: exec", "driver: docker", 1),
		`task.driver: must be exec or builtin, got "docker"`},
	{"missing driver", strings.Replace(validYAML, "driver: exec", "", 1), "task.driver: is required (exec or builtin)"},
	{"builtin without data", "name: ft\nkind: finetune\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny}}\n",
		"task.builtin.data: is required (a text file on the nodes)"},
	{"builtin eval without a checkpoint", "name: ev\nkind: eval\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: d.txt}}\n",
		"task.builtin.base: is required for eval jobs (the checkpoint to evaluate)"},
	{"builtin inference without a checkpoint", "name: srv\nkind: inference\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny}}\n",
		"task.builtin.base: is required for inference jobs (the checkpoint to serve)"},
	{"builtin batch", "name: b\nkind: batch\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: d.txt}}\n",
		"task.driver: the builtin runtime runs finetune, eval and inference jobs, not batch; use exec"},
	{"builtin bad numbers", "name: ft\nkind: finetune\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: d.txt, steps: -1, batch: -2, lr: 3}}\n",
		"task.builtin.steps: must be >= 0, got -1; task.builtin.batch: must be >= 0, got -2; task.builtin.lr: must be between 0 and 1, got 3"},
	{"lora without a base, bad shape", "name: ft\nkind: finetune\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: d.txt, lora: {rank: 0, alpha: -1, targets: [attn, embed, attn]}}}\n",
		`task.builtin.base: is required with task.builtin.lora (the frozen checkpoint the adapter trains on); task.builtin.lora.rank: must be between 1 and 1024, got 0; task.builtin.lora.alpha: must be >= 0 (0: twice the rank), got -1; task.builtin.lora.targets[1]: must be attn or mlp, got "embed"; task.builtin.lora.targets[2]: "attn" is given twice`},
	{"lora on an eval job", "name: ev\nkind: eval\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: d.txt, base: b, lora: {rank: 8}}}\n",
		"task.builtin.lora: only finetune jobs train adapters, this is a eval job"},
	{"lora unknown field", "name: ft\nkind: finetune\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: d.txt, base: b, lora: {rank: 8, ranks: 2}}}\n",
		`task.builtin.lora.ranks: unknown field (did you mean "rank"?)`},
	{"bad adapters", "name: srv\nkind: inference\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, base: b, adapters: [{name: legal, uri: u}, {name: legal, uri: v}, {name: 'a/b'}, {name: gpt-tiny, uri: w}]}}\n",
		`task.builtin.adapters[1].name: "legal" is given twice; task.builtin.adapters[2].name: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got "a/b"; task.builtin.adapters[2].uri: is required (the adapter's checkpoint); task.builtin.adapters[3].name: "gpt-tiny" is the base model's name`},
	{"adapters on a finetune job", "name: ft\nkind: finetune\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: d.txt, adapters: [{name: a, uri: u}]}}\n",
		"task.builtin.adapters: only inference jobs serve adapters, this is a finetune job"},
	{"builtin driver with exec", strings.Replace(validYAML, "driver: exec", "driver: builtin", 1),
		"task.builtin: is required when task.driver is builtin (model, data, ...); task.exec: must be empty when task.driver is builtin"},
	{"exec with builtin", strings.Replace(validYAML, "driver: exec", "driver: exec\n  builtin: {model: m}", 1),
		"task.builtin: must be empty when task.driver is exec"},
	{"missing exec", "name: a\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec}\n",
		"task.exec: is required when task.driver is exec"},
	{"missing command", "name: a\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {env: {A: b}}}\n",
		"task.exec.command: must name a program, got an empty list"},
	{"blank program", "name: a\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [\" \", x]}}\n",
		`task.exec.command[0]: must name a program, got " "`},
	{"reserved env", strings.Replace(validYAML, "env: {FOO: bar}", "env: {RANK: '3', CUDA_VISIBLE_DEVICES: '0', FOO: x}", 1),
		"task.exec.env.CUDA_VISIBLE_DEVICES: is set by Ark for every task and cannot be overridden; task.exec.env.RANK: is set by Ark for every task and cannot be overridden"},
	{"bad env name", strings.Replace(validYAML, "env: {FOO: bar}", "env: {1FOO: bar}", 1),
		"task.exec.env.1FOO: is not a valid environment variable name"},
	{"bad gpuMemory", strings.Replace(validYAML, "gpuMemory: 20Gi", "gpuMemory: 20GB", 1),
		`resources.gpuMemory: invalid quantity "20GB" (want a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G, T or m)`},
	{"negative memory", strings.Replace(validYAML, "gpuMemory: 20Gi", "memory: -1Gi", 1),
		"resources.memory: must not be negative, got -1Gi"},
	{"zero cpu", strings.Replace(validYAML, "gpuMemory: 20Gi", "cpu: 0", 1), "resources.cpu: must be > 0, got 0"},
	{"bad cpu", strings.Replace(validYAML, "gpuMemory: 20Gi", "cpu: two", 1),
		`resources.cpu: invalid quantity "two" (want a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G, T or m)`},
	{"huge cpu", strings.Replace(validYAML, "gpuMemory: 20Gi", "cpu: 9223372036854776", 1),
		`resources.cpu: quantity "9223372036854776" is out of range`},
	{"bad topology", strings.Replace(validYAML, "resources:", "topology: {nvlink: always}\nresources:", 1),
		`topology.nvlink: must be one of required, preferred, none, got "always"`},
	{"negative checkpoint", strings.Replace(validYAML, "kind: batch", "kind: batch\ncheckpoint: {every: -1, keep: -2, store: S3}", 1),
		`checkpoint.every: must be >= 0, got -1; checkpoint.keep: must be >= 0, got -2; checkpoint.store: must be lowercase letters, digits and '-', starting and ending with a letter or digit, got "S3"`},
	{"restarts out of range", strings.Replace(validYAML, "kind: batch", "kind: batch\nrestart: {maxRestarts: 101, backoff: -5s}", 1),
		"restart.maxRestarts: must be between 0 and 100, got 101; restart.backoff: must not be negative, got -5s"},
	{"empty model alternative", strings.Replace(validYAML, "gpuMemory: 20Gi", "gpuModel: 'H100,,H200'", 1),
		`resources.gpuModel: alternative 2 of "H100,,H200" is empty (write models separated by commas: "H100,H200")`},
	{"negative maxRuntime", strings.Replace(validYAML, "kind: batch", "kind: batch\nmaxRuntime: -1m", 1),
		"maxRuntime: must be between 0 (unbounded) and 8760h0m0s, got -1m0s"},
	{"tiny maxRuntime", strings.Replace(validYAML, "kind: batch", "kind: batch\nmaxRuntime: 10ms", 1),
		"maxRuntime: must be at least 1s when set, got 10ms"},
	{"maxRuntime not a duration", strings.Replace(validYAML, "kind: batch", "kind: batch\nmaxRuntime: forever", 1),
		`maxRuntime: must be a duration such as "30s" or "2m", got string "forever"`},
}

func TestParseInvalid(t *testing.T) {
	for _, tt := range badSpecs {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", j)
			}
			if j != nil {
				t.Errorf("Parse returned a job with its error")
			}
			got := err.Error()
			if strings.HasSuffix(tt.want, ": ") {
				if !strings.HasPrefix(got, tt.want) {
					t.Fatalf("error %q, want prefix %q", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("error\n got %q\nwant %q", got, tt.want)
			}
			// Field problems come as Errors, each with its path.
			var es Errors
			if strings.Contains(tt.want, ": must") || strings.Contains(tt.want, ": unknown") || strings.Contains(tt.want, ": is") {
				if !errors.As(err, &es) || len(es) == 0 || es[0].Path == "" {
					t.Fatalf("error %T is not a spec.Errors with paths", err)
				}
			}
		})
	}
}

func TestDecodeOversized(t *testing.T) {
	big := validYAML + "# " + strings.Repeat("x", MaxSpecBytes) + "\n"
	_, err := Decode([]byte(big))
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 1048576") {
		t.Fatalf("Decode of %d bytes: %v", len(big), err)
	}
}

// TestDecodeNoDefaults checks that Decode leaves defaulting to Parse.
func TestDecodeNoDefaults(t *testing.T) {
	j, err := Decode([]byte(validJSON))
	if err != nil {
		t.Fatal(err)
	}
	if j.Replicas != 0 || j.Namespace != "" || j.Resources.CPU != "" || j.Restart.Backoff != 0 {
		t.Fatalf("Decode applied defaults: %+v", j)
	}
}

// TestValidateEveryProblem checks that Validate reports every problem in one
// error, in field order.
func TestValidateEveryProblem(t *testing.T) {
	j := &Job{
		Name: "Bad Name", Kind: "train", Priority: -1, Replicas: -2,
		Resources:  Resources{GPUs: 0, GPUMemory: "x", CPU: "-1", Memory: "-1"},
		Topology:   Topology{NVLink: "maybe", RDMA: "maybe"},
		Task:       Task{Driver: DriverExec, Exec: &ExecTask{Command: nil, Env: map[string]string{"RANK": "1", "9": ""}}, Builtin: &BuiltinTask{}},
		Checkpoint: Checkpoint{Every: -1, Keep: -1},
		Restart:    Restart{MaxRestarts: -1, Backoff: Duration(-time.Second)},
	}
	err := j.Validate()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Validate = %v, want Errors", err)
	}
	var paths []string
	for _, e := range es {
		paths = append(paths, e.Path)
	}
	want := []string{
		"name", "kind", "priority", "replicas", "resources.gpus", "resources.gpuMemory", "resources.memory", "resources.cpu",
		"topology.nvlink", "topology.rdma", "task.exec.command", "task.exec.env.9", "task.exec.env.RANK", "task.builtin",
		"checkpoint.every", "checkpoint.keep", "restart.maxRestarts", "restart.backoff",
	}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("paths\n got %q\nwant %q", paths, want)
	}
	if (&Job{}).Validate() == nil {
		t.Fatal("an empty job validates")
	}
}

func TestDefaultKeepsValues(t *testing.T) {
	j := Job{Namespace: "ns", Queue: "q", Priority: 7, Replicas: 3, Resources: Resources{CPU: "2", Memory: "4Gi"},
		Topology: Topology{NVLink: PrefNone, RDMA: PrefRequired}, Checkpoint: Checkpoint{Store: "s"}, Restart: Restart{Backoff: Duration(time.Second)}}
	want := j
	j.Default()
	if !reflect.DeepEqual(j, want) {
		t.Fatalf("Default changed set fields:\n%+v\nwant\n%+v", j, want)
	}
}

func TestQuantity(t *testing.T) {
	tests := []struct {
		q      Quantity
		bytes  int64
		milli  int64
		errSub string
	}{
		{"", 0, 0, ""},
		{"0", 0, 0, ""},
		{"1", 1, 1000, ""},
		{"2", 2, 2000, ""},
		{"500m", 1, 500, ""}, // half a byte rounds up to a whole one
		{"1500m", 2, 1500, ""},
		{"0.5", 1, 500, ""},
		{"0.1", 1, 100, ""},
		{"1.5Ki", 1536, 1536000, ""},
		{"1Ki", 1 << 10, 1 << 10 * 1000, ""},
		{"512Mi", 512 << 20, 512 << 20 * 1000, ""},
		{"20Gi", 20 << 30, 20 << 30 * 1000, ""},
		{"141Gi", 141 << 30, 141 << 30 * 1000, ""},
		{"2Ti", 2 << 40, 2 << 40 * 1000, ""},
		{"1Pi", 1 << 50, 1 << 50 * 1000, ""},
		{"1k", 1000, 1e6, ""},
		{"1K", 1000, 1e6, ""},
		{"2M", 2e6, 2e9, ""},
		{"3G", 3e9, 3e12, ""},
		{"1T", 1e12, 1e15, ""},
		{"1e3", 1000, 1e6, ""},
		{"1.5e3Mi", 1500 << 20, 1500 << 20 * 1000, ""},
		{"-1Gi", -(1 << 30), -(1 << 30) * 1000, ""},
		{"+2", 2, 2000, ""},
		{"20GB", 0, 0, `invalid quantity "20GB"`},
		{"20gi", 0, 0, `invalid quantity "20gi"`},
		{"Gi", 0, 0, `invalid quantity "Gi"`},
		{"m", 0, 0, `invalid quantity "m"`},
		{"lots", 0, 0, `invalid quantity "lots"`},
		{"1 Gi", 0, 0, `invalid quantity "1 Gi"`},
		{"NaN", 0, 0, `invalid quantity "NaN"`},
		{"Inf", 0, 0, `invalid quantity "Inf"`},
		{"-Inf", 0, 0, `invalid quantity "-Inf"`},
		{"1e400", 0, 0, `invalid quantity "1e400"`},
		{"10Pi", 0, 0, `quantity "10Pi" is out of range`},
		{"-10Pi", 0, 0, `quantity "-10Pi" is out of range`},
		// The largest value Milli can hold without overflowing int64.
		{"9223372036854776", 0, 0, `quantity "9223372036854776" is out of range`},
	}
	for _, tt := range tests {
		t.Run(string(tt.q), func(t *testing.T) {
			b, errB := tt.q.Bytes()
			m, errM := tt.q.Milli()
			if tt.errSub != "" {
				if errB == nil || errM == nil || !strings.Contains(errB.Error(), tt.errSub) || !strings.Contains(errM.Error(), tt.errSub) {
					t.Fatalf("Bytes err %v, Milli err %v, want %q", errB, errM, tt.errSub)
				}
				return
			}
			if errB != nil || errM != nil {
				t.Fatalf("Bytes err %v, Milli err %v", errB, errM)
			}
			if b != tt.bytes || m != tt.milli {
				t.Fatalf("Bytes = %d, Milli = %d; want %d, %d", b, m, tt.bytes, tt.milli)
			}
		})
	}
}

// TestQuantityMilliNeverOverflows checks that any quantity Milli accepts is
// within int64 with the sign of its text.
func TestQuantityMilliNeverOverflows(t *testing.T) {
	for _, q := range []Quantity{"9223372036854775", "9223372036854774", "8Pi", "-8Pi", "9.2e15", "-9.2e15", "9223372036854775807m"} {
		m, err := q.Milli()
		if err != nil {
			continue
		}
		if neg := strings.HasPrefix(string(q), "-"); (m < 0) != neg {
			t.Errorf("Milli(%q) = %d: overflowed", q, m)
		}
	}
}

func TestQuantityUnmarshalJSON(t *testing.T) {
	tests := []struct {
		in   string
		want Quantity
		err  bool
	}{
		{`"20Gi"`, "20Gi", false},
		{`" 2Gi "`, "2Gi", false},
		{`2`, "2", false},
		{`0.5`, "0.5", false},
		{`1e3`, "1e3", false},
		{`true`, "", true},
		{`[1]`, "", true},
		{`{}`, "", true},
	}
	for _, tt := range tests {
		var q Quantity
		err := json.Unmarshal([]byte(tt.in), &q)
		if (err != nil) != tt.err || q != tt.want {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q, error %v", tt.in, q, err, tt.want, tt.err)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1023, "1023"},
		{1024, "1Ki"},
		{1536, "1.5Ki"},
		{1 << 20, "1Mi"},
		{512 << 20, "512Mi"},
		{1 << 30, "1Gi"},
		{141 << 30, "141Gi"},
		{141<<30 - 1, "141.0Gi"},
		{23*(1<<30) + 512<<20, "23.5Gi"},
		{1 << 40, "1Ti"},
		{3 << 50, "3Pi"},
		{5000 << 50, "5000Pi"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	// Whatever FormatBytes prints of an exact count parses back to it.
	for _, n := range []int64{1 << 10, 7 << 20, 141 << 30, 2 << 40} {
		if b, err := Quantity(FormatBytes(n)).Bytes(); err != nil || b != n {
			t.Errorf("Quantity(FormatBytes(%d)).Bytes() = %d, %v", n, b, err)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{`"30s"`, 30 * time.Second, ""},
		{`"2m"`, 2 * time.Minute, ""},
		{`"1h30m"`, 90 * time.Minute, ""},
		{`"-5s"`, -5 * time.Second, ""},
		{`"0"`, 0, ""},
		{`10`, 10 * time.Second, ""},
		{`0.25`, 250 * time.Millisecond, ""},
		{`"30"`, 0, `string "30"`},
		{`"soon"`, 0, `string "soon"`},
		{`9223372036`, 9223372036 * time.Second, ""},
		{`-9223372036`, -9223372036 * time.Second, ""},
		{`9223372037`, 0, "number 9223372037"},
		{`-9223372037`, 0, "number -9223372037"},
		{`1e300`, 0, "number 1e300"},
		{`true`, 0, "bool"},
		{`[]`, 0, "array"},
	}
	for _, tt := range tests {
		var d Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if tt.err != "" {
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) || te.Value != tt.err {
				t.Errorf("Unmarshal(%s) error %v, want a type error with value %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || time.Duration(d) != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", tt.in, time.Duration(d), err, tt.want)
		}
		// MarshalJSON writes a string that decodes to the same value.
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Errorf("round trip of %v via %s = %v, %v", time.Duration(d), b, time.Duration(back), err)
		}
	}
}

func TestSuggest(t *testing.T) {
	fields := jsonFields(reflect.TypeFor[Resources]())
	tests := map[string]string{
		"gpu":        "gpus",
		"GPUS":       "gpus",
		"gpumemory":  "gpuMemory",
		"gpuMemroy":  "gpuMemory",
		"memroy":     "memory",
		"cpus":       "cpu",
		"disk":       "",
		"bandwidths": "",
	}
	for k, want := range tests {
		if got := suggest(k, fields); got != want {
			t.Errorf("suggest(%q) = %q, want %q", k, got, want)
		}
	}
}

// FuzzDecode checks that Decode never panics on any input, and that a spec
// Parse accepts re-encodes to JSON that parses again to an equal value.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(validYAML))
	f.Add([]byte(validJSON))
	for _, tt := range badSpecs {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte("name: a\nkind: batch\nresources: {gpus: 1, cpu: 1e3, memory: 0.5}\ntask: {driver: exec, exec: {command: [x], env: {}}}\nrestart: {backoff: 0.1}\n"))
	f.Add([]byte("{\"name\":\"a\",\"kind\":\"eval\",\"resources\":{\"gpus\":1},\"task\":{\"driver\":\"exec\",\"exec\":{\"command\":[\"\\udc00\"]}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Decode(data); err != nil {
			return
		}
		j1, err := Parse(data)
		if err != nil {
			return
		}
		js, err := json.Marshal(j1)
		if err != nil {
			t.Fatalf("marshal an accepted spec: %v", err)
		}
		j2, err := Parse(js)
		if err != nil {
			t.Fatalf("Parse accepted the spec but refuses its JSON form %s: %v", js, err)
		}
		if !reflect.DeepEqual(normalize(j1), normalize(j2)) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v\nvia %s", j1, j2, js)
		}
	})
}

// normalize treats an empty env map as none: JSON omits both alike.
func normalize(j *Job) *Job {
	c := *j
	if c.Task.Exec != nil && len(c.Task.Exec.Env) == 0 {
		e := *c.Task.Exec
		e.Env = nil
		c.Task.Exec = &e
	}
	return &c
}

func TestDecodeJSONRepeatedKey(t *testing.T) {
	for _, in := range []string{
		`{"name":"a","name":"b"}`,
		`{"name":"a","task":{"driver":"exec","driver":"builtin"}}`,
		`{"name":"a","task":{"exec":{"command":["x"],"env":{"A":"1","A":"2"}}}}`,
	} {
		_, err := Decode([]byte(in))
		if err == nil || !strings.Contains(err.Error(), "is repeated") {
			t.Errorf("Decode(%s) = %v, want a repeated-key error", in, err)
		}
	}
}

// BenchmarkDecode compares the JSON fast path (what the API receives) with
// the same spec written as YAML.
func BenchmarkDecode(b *testing.B) {
	for _, tc := range []struct{ name, in string }{{"json", validJSON}, {"yaml", validYAML}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Parse([]byte(tc.in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
