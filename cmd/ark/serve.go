package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/serve"
	"github.com/ark-sched/ark/worker/serve/rules"
	"github.com/ark-sched/ark/worker/train"
)

func init() { taskCommands = append(taskCommands, newTaskServeCmd) }

// newTaskServeCmd is `ark task serve`: the builtin inference server that an
// inference job's replicas run.
func newTaskServeCmd() *cobra.Command {
	var (
		ckpt, listen, name string
		threads            int
		device             string
		adapters           []string
		pins               []string
		adminTokenFile     string
		rulesFile          string
		rulesJSON          string
		cpuProfile         string
		opt                serve.Options
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a builtin GPT checkpoint over an OpenAI-compatible HTTP API, as an inference replica",
		Long: `Loads a checkpoint (--base, or --ckpt) and any number of LoRA adapters trained
on it (--adapter NAME=URI, repeatable), and answers, with continuous batching:
POST /v1/completions and /v1/chat/completions (OpenAI-compatible, "stream": true
for Server-Sent Events; "model" picks the base or an adapter by name), GET
/v1/models (adapters listed with the base as parent), GET /v1/health, and Ark's
own POST /v1/generate {"prompt", "tokens", "temperature", "seed"} (ark infer).
Requests for different adapters share each decode step. Adapters live in
--adapter-slots compute slots, an LRU cache of --host-adapters in host memory,
and the object store; POST /v1/adapters {"name","uri"} loads one at run time
and DELETE /v1/adapters/NAME removes it (with --admin-token-file: that bearer
token; in an Ark task: nobody, the job's spec is followed instead, changed in
place with ark job adapter add|rm or ark job update; else from this machine
only); GET /v1/adapters shows their tiers.
Intervention rules (--rules FILE: a YAML or JSON list, as task.builtin.rules in
a job spec) block, mask or route prompts and mask or block generated text,
streamed or not; GET /v1/rules shows them with how often each acted, PUT
/v1/rules {"rules": [...]} replaces them without a restart (as adapters).
Inside an Ark task it listens on the port the scheduler reserved for the
replica (ARK_NODE_ADDR:ARK_PORT) and reports its endpoint to the agent;
standalone, give --listen. It stops on SIGTERM.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ckpt == "" {
				return usagef("--base (or --ckpt) is required")
			}
			if err := weightsFlag(opt.Weights); err != nil {
				return err
			}
			if listen == "" {
				host, port := os.Getenv("ARK_NODE_ADDR"), os.Getenv("ARK_PORT")
				if host == "" || port == "" {
					return usagef("--listen is required outside an Ark inference task")
				}
				listen = net.JoinHostPort(host, port)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cpuProfile != "" {
				end, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer end()
			}
			d, err := openDevice(device, threads, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer d.Close()
			keys, err := train.TaskKeys() // the namespace's checkpoint key
			if err != nil {
				return err
			}
			if _, half := d.(kernels.BF16Packer); opt.Weights == serve.WeightsBF16 && !half {
				// A job's spec cannot know which device its replica gets.
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: --weights bf16: the %s device keeps decoded weights in float32; serving them in float32\n", d.Name())
				opt.Weights = serve.WeightsFloat32
			}
			m, step, err := train.LoadModel(ctx, d, ckpt, keys)
			if err != nil {
				return err
			}
			for _, a := range adapters {
				n, uri, ok := strings.Cut(a, "=")
				if !ok || n == "" || uri == "" {
					return usagef("--adapter %q: want NAME=URI", a)
				}
				opt.Adapters = append(opt.Adapters, serve.AdapterSpec{Name: n, URI: uri, Pinned: slices.Contains(pins, n)})
			}
			for _, p := range pins {
				if !slices.ContainsFunc(opt.Adapters, func(a serve.AdapterSpec) bool { return a.Name == p }) {
					return usagef("--pin %q: no --adapter of that name", p)
				}
			}
			opt.LoadAdapter = func(ctx context.Context, uri string) (*train.AdapterWeights, error) {
				return train.ReadAdapter(ctx, uri, keys)
			}
			if adminTokenFile != "" {
				tok, err := os.ReadFile(adminTokenFile)
				if err != nil {
					return usageError{fmt.Errorf("--admin-token-file: %w", err)}
				}
				if opt.AdminToken = strings.TrimSpace(string(tok)); opt.AdminToken == "" {
					return usagef("--admin-token-file %s is empty", adminTokenFile)
				}
			}
			if os.Getenv("ARK_ALLOC_ID") != "" && opt.AdminToken == "" {
				// In an Ark task: the adapters are the spec's, which the
				// replica follows (syncRules); POST|DELETE /v1/adapters
				// take a token no one holds, so no other task of the node
				// (loopback) changes what this service serves.
				var raw [32]byte
				rand.Read(raw[:])
				opt.AdminToken = hex.EncodeToString(raw[:])
			}
			if opt.Rules, err = readRules(rulesFile, rulesJSON); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			opt.RuleLog = func(id string, d rules.Decision) {
				// The request's ID and the rule, never the text.
				fmt.Fprintf(stderr, "rule %s (version %d) %s request %s\n", d.Rule, d.Version, d.Action, id)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			if name == "" {
				name = servedName(m.Cfg)
			}
			opt.Model, opt.Ckpt, opt.Step, opt.Replica = name, ckpt, step, os.Getenv("ARK_ALLOC_ID")
			s, err := serve.New(m, opt)
			if err != nil {
				return err
			}
			ectx, stopEngine := context.WithCancel(context.Background())
			engineDone := make(chan error, 1)
			go func() { engineDone <- s.Run(ectx) }()
			defer func() { stopEngine(); <-engineDone }()
			srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
			endpoint := "http://" + ln.Addr().String()
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s as model %q (step %d) on %s\n", ckpt, name, step, endpoint)
			for _, a := range opt.Adapters {
				fmt.Fprintf(cmd.OutOrStdout(), "adapter %q from %s (loading in the background)\n", a.Name, a.URI)
			}
			if agent, alloc := os.Getenv("ARK_AGENT_ADDR"), os.Getenv("ARK_ALLOC_ID"); agent != "" && alloc != "" {
				if err := postReport(ctx, agent, alloc, api.TaskReport{Progress: "serving on " + endpoint}); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err)
				}
				version, _ := strconv.Atoi(os.Getenv("ARK_JOB_VERSION"))
				go syncRules(ctx, agent, alloc, version, liveSetters{s.SetRules, s.SetAdapters}, func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) })
			}
			return serveUntilDone(ctx, srv, ln, 5*time.Second, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckpt, "ckpt", "", "checkpoint: STORE_URI/JOB/STEP or STORE_URI/JOB (newest)")
	f.StringVar(&ckpt, "base", "", "the base model's checkpoint (same as --ckpt)")
	f.StringVar(&name, "served-model-name", "", "the name requests' `model` must give (default: the builtin preset's name, e.g. gpt-tiny)")
	f.StringVar(&listen, "listen", "", "address to serve on (default ARK_NODE_ADDR:ARK_PORT)")
	f.IntVar(&threads, "threads", 1, "compute threads")
	f.StringVar(&device, "device", "auto", "compute device: auto (cuda when the task has a GPU and the driver loads, else cpu), cpu or cuda")
	f.IntVar(&opt.MaxBatch, "max-batch", 32, "sequences decoded together in one step")
	f.StringVar(&opt.Weights, "weights", serve.WeightsFloat32, "how the base's weights are kept for decoding: float32, or bf16 (half the memory and the bytes each decode step reads; the cpu device)")
	f.IntVar(&opt.MaxQueue, "max-queue", 256, "requests waiting for a batch slot; past it requests get 429 with Retry-After")
	f.DurationVar(&opt.RequestTimeout, "request-timeout", 5*time.Minute, "deadline of one request, queueing included (0: none)")
	f.StringArrayVar(&adapters, "adapter", nil, "a LoRA adapter to serve as NAME=URI (a checkpoint STORE_URI/JOB/STEP or STORE_URI/JOB); repeatable")
	f.StringArrayVar(&pins, "pin", nil, "an --adapter NAME never evicted from host memory; repeatable")
	f.IntVar(&opt.AdapterSlots, "adapter-slots", 0, "adapters active in compute memory at once (requests of other adapters wait for a slot; default: --max-batch, so none waits)")
	f.IntVar(&opt.MaxLoRARank, "max-lora-rank", 16, "largest adapter rank a slot holds")
	f.IntVar(&opt.HostAdapters, "host-adapters", 64, "unpinned adapters cached in host memory (least recently used evicted first)")
	f.Float64Var(&opt.ModelRate, "model-rate", 0, "requests a second each served model (the base, each adapter) takes; past it 429 with Retry-After (0: no limit)")
	f.IntVar(&opt.ModelBurst, "model-burst", 0, "with --model-rate: the requests a model may take at once (0: one second's worth)")
	f.StringVar(&rulesFile, "rules", "", "intervention rules: a YAML or JSON file holding a list of rules")
	f.StringVar(&rulesJSON, "rules-json", "", "intervention rules as a JSON list (what the builtin driver passes)")
	_ = f.MarkHidden("rules-json")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (ark bench serve --profile-dir)")
	_ = f.MarkHidden("cpuprofile")
	f.StringVar(&adminTokenFile, "admin-token-file", "", "file holding the bearer token POST/DELETE /v1/adapters require (default: allowed from this machine only; in an Ark task, from nobody)")
	return cmd
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--cpuprofile: %w", err)}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// servedName is the name of the builtin preset with m's shape, else a
// description of it.
func servedName(c train.Config) string {
	for _, p := range train.Presets() {
		if pc, err := train.Preset(p); err == nil && pc == c {
			return p
		}
	}
	return fmt.Sprintf("gpt-%dx%d", c.Layers, c.Width)
}

// readRules reads intervention rules from a file (YAML or JSON, a list)
// or inline JSON; both empty is none. Unknown fields are errors.
func readRules(file, inline string) ([]spec.Rule, error) {
	data := []byte(inline)
	if file != "" {
		if inline != "" {
			return nil, usagef("give --rules or --rules-json, not both")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError{fmt.Errorf("--rules: %w", err)}
		}
		data = b
	}
	if len(data) == 0 {
		return nil, nil
	}
	var rs []spec.Rule
	if err := yaml.UnmarshalStrict(data, &rs); err != nil {
		return nil, usageError{fmt.Errorf("rules: %w", err)}
	}
	if es := spec.ValidateRules("rules", rs); len(es) > 0 {
		return nil, usageError{es}
	}
	return rs, nil
}

// serveUntilDone serves srv on ln until ctx ends (SIGTERM: the agent
// stops the task), then stops taking connections and gives the requests
// it has grace to finish.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration, out io.Writer) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(out, "stopped")
	return nil
}

// weightsFlag checks --weights (ark task serve, ark bench serve).
func weightsFlag(w string) error {
	if !spec.KnownWeights(w) {
		return usagef("--weights %q: want %s or %s", w, serve.WeightsFloat32, serve.WeightsBF16)
	}
	return nil
}
