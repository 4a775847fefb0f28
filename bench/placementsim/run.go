package placementsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/placement"
)

// ErrConfig marks a usage error (the command exits 2).
var ErrConfig = errors.New("invalid configuration")

// Options are the benchmark's inputs (the flags of ark bench placement).
type Options struct {
	Nodes     string   // node list CSV
	Arrivals  []string // arrival files to replay
	NodeOrder string   // tie-break order; found next to the arrival file when empty
	Pods      string   // a task list to generate a sequence from (with Seed)
	Seed      uint64
	Policies  []string
	Events    string // write the single policy run's decisions here
	Compare   string // reference events file to compare decisions with
	All       bool   // every arrival file in the data folder
	Speed     bool
	// OverTime runs the trace-driven simulation with arrivals and
	// departures on OverTimePods (default: the default list), arrivals
	// compressed by TimeScale.
	OverTime     bool
	OverTimePods string
	TimeScale    float64
	// Copies submits the list this many times (copy c one second after
	// copy c-1), to load the cluster past what the trace alone does.
	Copies int
	// OverTimeSeed draws what the trace does not say: queues, declared
	// runtimes, the order within a second, the copies' times
	// (overtime_seed.go). 0 is the recorded tables' draw.
	OverTimeSeed uint64
	// OverTimeCopyJitter bounds a seeded copy's delay in trace seconds
	// (CopyJitter from the command; 0 keeps the copies 1 s apart).
	OverTimeCopyJitter float64
	// Schedulers are the over-time schedulers to compare (default fifo,
	// ark-nopreempt, ark; see OverTimeSchedulers). CheckpointEvery is the seconds between
	// checkpoints (default 1800); Overestimate the most a declared
	// maxRuntime over-estimates the real one (default 3).
	Schedulers      []string
	CheckpointEvery float64
	Overestimate    float64
	// PreemptMinRuntime protects a task from eviction for its first
	// seconds of each run (the server's --preemption-min-runtime).
	PreemptMinRuntime float64
	// PassInterval is the seconds between scheduling passes over time
	// (default 1; every scheduler, FIFO included, schedules at the same
	// ticks).
	PassInterval float64
	// MixSweep runs Ark, FGD and best fit on the FGD paper's workload mixes
	// (RunMixSweep) instead of the openb sequences: MixClasses and MixPcts
	// narrow it (all when empty), MixSeeds are its seeds (42, 43, 44).
	MixSweep   bool
	MixClasses []MixClass
	MixPcts    []int
	MixSeeds   []uint64
	// SpeedNodes, Singles and Gangs size the speed benchmark.
	SpeedNodes, Singles, Gangs int
}

// Row is one policy on one sequence.
type Row struct {
	Policy      string   `json:"policy"`
	Pods        string   `json:"pods"`
	Seed        *int     `json:"seed,omitempty"`
	AllocPct    float64  `json:"alloc_pct"`
	Unallocated float64  `json:"unallocated_gpu_pct"`
	Placed      int      `json:"placed"`
	Dropped     int      `json:"dropped"`
	RefSeed     *float64 `json:"reference_seed,omitempty"`
	RefMean     *float64 `json:"reference_mean_42_51,omitempty"`
	Diff        *Diff    `json:"events_diff,omitempty"`
	Seconds     float64  `json:"seconds"`
}

// Report is everything one run measured.
type Report struct {
	Env     map[string]string `json:"env"`
	Results []Row             `json:"results"`
	Speed   *SpeedOut         `json:"speed,omitempty"`
	// Schedulers are the over-time headline rows, FIFO first fit first;
	// OverTime has the full figures of each.
	Schedulers     []SchedulerRow   `json:"schedulers,omitempty"`
	OverTime       []OverTimeResult `json:"over_time,omitempty"`
	OverTimeScale  float64          `json:"over_time_scale,omitempty"`
	OverTimePods   string           `json:"over_time_pods,omitempty"`
	OverTimeCopies int              `json:"over_time_copies,omitempty"`
	OverTimeSeed   uint64           `json:"over_time_seed,omitempty"`
	// OverTimeCopyJitter is the bound of a seeded copy's delay (trace s).
	OverTimeCopyJitter float64 `json:"over_time_copy_jitter_s,omitempty"`
	// OverTimeCheckpoint is the seconds between checkpoints; an evicted task
	// restarts from its last one. OverTimeOverestimate bounds the declared
	// maxRuntime's over-estimate (uniform in [1, it)).
	OverTimeCheckpoint   float64 `json:"over_time_checkpoint_s,omitempty"`
	OverTimeOverestimate float64 `json:"over_time_runtime_overestimate,omitempty"`
	// Mixes is the workload-mix sweep (--mix-sweep).
	Mixes *MixReport `json:"mixes,omitempty"`
	// Ark vs FGD per sequence, when both ran.
	ArkBeatsFGD *bool `json:"ark_beats_fgd,omitempty"`
}

// SpeedOut is the speed section of the JSON.
type SpeedOut struct {
	SinglePerSec float64      `json:"single_per_sec"`
	GangPerSec   float64      `json:"gang_per_sec"`
	Detail       *SpeedResult `json:"detail"`
}

// Reference figures from PROTOCOL.md: the mean of seeds 42-51 per list
// and policy, and the seed-42 default runs.
var refMean = map[string]map[string]float64{
	"default":    {"fgd": 4.77, "bestfit": 7.14, "random": 13.70},
	"gpushare40": {"fgd": 6.04, "bestfit": 8.56, "random": 15.14},
	"multigpu20": {"fgd": 4.47, "bestfit": 6.27, "random": 13.08},
	"gpuspec10":  {"fgd": 5.34, "bestfit": 6.90, "random": 13.74},
	"cpu050":     {"fgd": 5.00, "bestfit": 6.44, "random": 10.98},
}

var refSeed = map[string]float64{"default/42/fgd": 4.86, "default/42/bestfit": 7.06}

var arrivalName = regexp.MustCompile(`^arrivals_openb_pod_list_([a-z0-9]+)_seed([0-9]+)$`)

// DataDirEnv names a directory holding the openb data (what
// bench/data/openb holds), for a binary run away from its repository.
const DataDirEnv = "ARK_OPENB_DIR"

// DataDir finds bench/data/openb: $ARK_OPENB_DIR, else under the working
// directory or one of its parents, else under the directory of the
// running binary or one of its parents (a binary built into or beside the
// repository works from any directory). When none has it, it returns the
// relative path and Run's error says where it looked.
func DataDir() string {
	if d := os.Getenv(DataDirEnv); d != "" {
		return d
	}
	starts := []string{}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			p := filepath.Join(dir, "bench", "data", "openb")
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return p
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return filepath.Join("bench", "data", "openb")
}

// dataMissing explains a data directory DataDir could not find.
func dataMissing(data string) error {
	if _, err := os.Stat(data); err == nil {
		return nil
	}
	return fmt.Errorf("%w: the openb data (bench/data/openb of the Ark repository) is not in %s: run from the repository, "+
		"put the binary in it, or set %s to that directory", ErrConfig, data, DataDirEnv)
}

func existing(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Run runs the benchmark.
func Run(o Options, progress io.Writer) (*Report, error) {
	if len(o.Policies) == 0 {
		o.Policies = []string{"ark", "fgd", "bestfit", "firstfit", "random"}
	}
	for _, p := range o.Policies {
		if _, err := placement.NewPolicy(p, nil, 0); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	data := DataDir()
	if o.MixSweep {
		return runMixes(o, data, progress)
	}
	if o.Nodes == "" && len(o.Arrivals) == 0 {
		if err := dataMissing(data); err != nil {
			return nil, err
		}
	}
	if o.Nodes == "" {
		o.Nodes = filepath.Join(data, "openb_node_list_gpu_node.csv")
	}
	if o.All {
		for _, list := range []string{"default", "gpushare40", "multigpu20", "gpuspec10", "cpu050"} {
			for _, s := range []int{42, 43, 44} {
				o.Arrivals = append(o.Arrivals, filepath.Join(data, "arrivals", fmt.Sprintf("arrivals_openb_pod_list_%s_seed%d.csv.gz", list, s)))
			}
		}
	}
	if len(o.Arrivals) == 0 && o.Pods == "" {
		o.Arrivals = []string{filepath.Join(data, "arrivals", "arrivals_openb_pod_list_default_seed42.csv.gz")}
	}
	if o.Compare == "" {
		o.Compare = "auto" // the seed-42 default sequence has reference events
	}
	if o.Events != "" && (len(o.Policies) != 1 || len(o.Arrivals)+btoi(o.Pods != "") != 1) {
		return nil, fmt.Errorf("%w: --events needs one policy and one sequence", ErrConfig)
	}
	rep := &Report{Env: Env(), Results: []Row{}}
	nodes, err := LoadNodes(o.Nodes)
	if err != nil {
		return nil, err
	}
	type seq struct {
		name  string
		list  string
		seed  *int
		pods  []Pod
		order string
		orig  []Pod
	}
	var seqs []seq
	for _, a := range o.Arrivals {
		pods, err := LoadPods(a)
		if err != nil {
			return nil, err
		}
		s := seq{name: Base(a), pods: pods, order: o.NodeOrder}
		if m := arrivalName.FindStringSubmatch(s.name); m != nil {
			s.list = m[1]
			n, _ := strconv.Atoi(m[2])
			s.seed = &n
			if s.order == "" {
				dir := filepath.Dir(a)
				b := fmt.Sprintf("nodes_openb_pod_list_%s_seed%s.csv", m[1], m[2])
				s.order = existing(filepath.Join(dir, b), filepath.Join(dir, b+".gz"))
			}
		}
		for _, p := range pods {
			if p.Name == p.Source {
				s.orig = append(s.orig, p)
			}
		}
		seqs = append(seqs, s)
	}
	if o.Pods != "" {
		list, err := LoadPods(o.Pods)
		if err != nil {
			return nil, err
		}
		var total int64
		for _, n := range nodes {
			total += int64(n.GPUs) * placement.MilliPerGPU
		}
		seed := int(o.Seed)
		s := seq{name: Base(o.Pods), pods: Generate(list, o.Seed, total), seed: &seed, order: o.NodeOrder, orig: list}
		s.list = strings.TrimPrefix(s.name, "openb_pod_list_")
		seqs = append(seqs, s)
	}
	for _, s := range seqs {
		var rank map[string]int
		if s.order != "" {
			if rank, err = LoadNodeOrder(s.order); err != nil {
				return nil, err
			}
		}
		tasks := make([]placement.Task, len(s.orig))
		for i, p := range s.orig {
			tasks[i] = p.Task()
		}
		dist := placement.TypicalShapes(tasks, 95)
		for _, name := range o.Policies {
			seed := uint64(42)
			if s.seed != nil {
				seed = uint64(*s.seed)
			}
			p, _ := placement.NewPolicy(name, dist, seed)
			start := time.Now()
			res, err := Replay(nodes, rank, s.pods, p)
			if err != nil {
				return nil, err
			}
			row := Row{Policy: p.Name(), Pods: s.name, Seed: s.seed, AllocPct: res.AllocPct, Unallocated: res.Unallocated,
				Placed: res.Placed, Dropped: res.Dropped, Seconds: time.Since(start).Seconds()}
			if m, ok := refMean[s.list][p.Name()]; ok {
				row.RefMean = &m
			}
			if s.seed != nil {
				if v, ok := refSeed[fmt.Sprintf("%s/%d/%s", s.list, *s.seed, p.Name())]; ok {
					row.RefSeed = &v
				}
			}
			cmp := o.Compare
			if cmp == "auto" {
				cmp = ""
				if s.seed != nil && s.list == "default" && *s.seed == 42 {
					ev := map[string]string{"fgd": "events_default_06-FGD_seed42.csv", "bestfit": "events_default_05-BestFit_seed42.csv"}[p.Name()]
					if ev != "" {
						dir := filepath.Join(data, "arrivals")
						cmp = existing(filepath.Join(dir, ev), filepath.Join(dir, ev+".gz"))
					}
				}
			}
			if cmp != "" {
				d, err := CompareEvents(res.Events, cmp)
				if err != nil {
					return nil, err
				}
				row.Diff = &d
			}
			if o.Events != "" {
				if err := WriteEventsFile(o.Events, res.Events); err != nil {
					return nil, err
				}
			}
			if progress != nil {
				fmt.Fprintf(progress, "%s %s: %.2f%% unallocated (%.1fs)\n", s.name, p.Name(), row.Unallocated, row.Seconds)
			}
			rep.Results = append(rep.Results, row)
		}
	}
	rep.ArkBeatsFGD = arkVsFGD(rep.Results)
	if o.OverTime {
		if o.OverTimePods == "" {
			o.OverTimePods = filepath.Join(data, "openb_pod_list_default.csv.gz")
		}
		if o.TimeScale == 0 {
			o.TimeScale = 1
		}
		list, err := LoadPods(o.OverTimePods)
		if err != nil {
			return nil, err
		}
		list = copyPods(list, o.Copies, o.OverTimeSeed, o.OverTimeCopyJitter)
		rep.OverTimeScale, rep.OverTimePods, rep.OverTimeCopies = o.TimeScale, Base(o.OverTimePods), max(o.Copies, 1)
		if rep.OverTimeSeed = o.OverTimeSeed; o.OverTimeSeed != 0 {
			rep.OverTimeCopyJitter = o.OverTimeCopyJitter
		}
		if o.CheckpointEvery <= 0 {
			o.CheckpointEvery = defaultCheckpoint
		}
		if o.Overestimate < 1 {
			o.Overestimate = 3
		}
		rep.OverTimeCheckpoint, rep.OverTimeOverestimate = o.CheckpointEvery, o.Overestimate
		if rep.OverTime, err = runOverTime(nodes, list, o, progress); err != nil {
			return nil, err
		}
		rep.Schedulers = schedulerRows(rep.OverTime)
	}
	if o.Speed {
		if o.SpeedNodes == 0 {
			o.SpeedNodes = 10000
		}
		if o.Singles == 0 {
			o.Singles = 20000
		}
		if o.Gangs == 0 {
			o.Gangs = 2000
		}
		sr, err := Speed(o.SpeedNodes, o.Singles, o.Gangs, 1)
		if err != nil {
			return nil, err
		}
		rep.Speed = &SpeedOut{SinglePerSec: sr.SinglePerSec, GangPerSec: sr.GangPerSec, Detail: sr}
	}
	return rep, nil
}

// runMixes is Run for --mix-sweep: only the sweep.
func runMixes(o Options, data string, progress io.Writer) (*Report, error) {
	if err := dataMissing(data); err != nil {
		return nil, err
	}
	if o.Nodes == "" {
		o.Nodes = filepath.Join(data, "openb_node_list_gpu_node.csv")
	}
	nodes, err := LoadNodes(o.Nodes)
	if err != nil {
		return nil, err
	}
	rep := &Report{Env: Env(), Results: []Row{}}
	rep.Mixes, err = RunMixSweep(data, nodes, o.MixClasses, o.MixPcts, o.MixSeeds, progress)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func arkVsFGD(rows []Row) *bool {
	ark, fgd := map[string]float64{}, map[string]float64{}
	for _, r := range rows {
		switch r.Policy {
		case "ark":
			ark[r.Pods] = r.Unallocated
		case "fgd":
			fgd[r.Pods] = r.Unallocated
		}
	}
	if len(ark) == 0 || len(fgd) == 0 {
		return nil
	}
	beats := true
	for k, a := range ark {
		if f, ok := fgd[k]; ok && a >= f {
			beats = false
		}
	}
	return &beats
}

// Env describes where the benchmark ran.
func Env() map[string]string {
	env := map[string]string{
		"go": runtime.Version(), "cores": strconv.Itoa(runtime.NumCPU()), "gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
		"os": runtime.GOOS + "/" + runtime.GOARCH, "cpu": cpuModel(), "commit": commit(),
	}
	return env
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if i := strings.Index(l, ":"); i >= 0 {
				return strings.TrimSpace(l[i+1:])
			}
		}
	}
	return "unknown"
}

func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return "unknown"
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func fmtRef(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

// WriteMarkdown writes the report as Markdown tables.
func (r *Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "## ark bench placement\n\n")
	fmt.Fprintf(w, "| env | value |\n| --- | --- |\n")
	for _, k := range []string{"cpu", "cores", "gomaxprocs", "go", "os", "commit"} {
		fmt.Fprintf(w, "| %s | %s |\n", k, r.Env[k])
	}
	if len(r.Results) > 0 {
		fmt.Fprintf(w, "\nPacking on openb (Alibaba cluster-trace-gpu-v2023, CC BY 4.0), the FGD paper's protocol: 1,213 nodes,\n")
		fmt.Fprintf(w, "6,212 GPUs, tasks arrive one by one and never leave; headline = unallocated GPU %% at 100%% of capacity arrived\n")
		fmt.Fprintf(w, "(lower is better). Reference: the FGD paper's simulator (seed 42 run; mean of seeds 42-51).\n\n")
		fmt.Fprintf(w, "| sequence | policy | placed | dropped | unallocated GPU %% | ref seed | ref mean 42-51 | decisions vs ref events | s |\n")
		fmt.Fprintf(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n")
		for _, x := range r.Results {
			d := "-"
			if x.Diff != nil {
				d = fmt.Sprintf("%d/%d identical", x.Diff.Compared-x.Diff.NodeDiffers-x.Diff.GPUDiffers, x.Diff.Compared)
			}
			fmt.Fprintf(w, "| %s | %s | %d | %d | %.2f | %s | %s | %s | %.1f |\n", x.Pods, x.Policy, x.Placed, x.Dropped, x.Unallocated, fmtRef(x.RefSeed), fmtRef(x.RefMean), d, x.Seconds)
		}
		if r.ArkBeatsFGD != nil {
			fmt.Fprintf(w, "\nArk leaves fewer GPUs unallocated than FGD on every sequence run: %v\n\n", *r.ArkBeatsFGD)
		}
	}
	if r.Mixes != nil {
		r.Mixes.WriteMarkdown(w)
	}
	if len(r.OverTime) > 0 {
		r.writeOverTime(w)
	}
	if r.Speed != nil {
		s := r.Speed.Detail
		fmt.Fprintf(w, "\nSpeed (one core, Ark policy): synthetic %d nodes x 8 GPUs, prefilled to ~50%% (singles) / ~20%% (gangs).\n\n", s.Nodes)
		fmt.Fprintf(w, "| workload | placed / tried | per second | target |\n| --- | ---: | ---: | ---: |\n")
		fmt.Fprintf(w, "| single-GPU tasks (whole, 500m, 250m; %d node states, %d GPU states) | %d / %d | %.0f | 20,000 |\n", s.Classes, s.Groups, s.SinglePlaced, s.SingleTried, s.SinglePerSec)
		fmt.Fprintf(w, "| same, CPU and memory drawn per task (%d node states, %d GPU states) | %d / %d | %.0f | 20,000 |\n", s.DiverseClasses, s.DiverseGroups, s.DiversePlaced, s.SingleTried, s.DiversePerSec)
		fmt.Fprintf(w, "| gangs of 2-8 nodes x 8 GPUs | %d / %d | %.0f | 2,000 |\n", s.GangPlaced, s.GangTried, s.GangPerSec)
	}
}
