package placementsim

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/ark-sched/ark/scheduler/placement"
)

// MixBase is the trace list each class's mixes are drawn from: the list
// that carries the class (gpuspec10's constrained tasks are the trace's
// only tasks that name a model; multigpu20 adds 172 multi-GPU tasks to the
// default's 77).
var MixBase = map[MixClass]string{MixSharing: "default", MixMultiGPU: "multigpu20", MixGPUModel: "gpuspec10"}

// MixPcts are the shares the paper sweeps, per class.
var MixPcts = map[MixClass][]int{
	MixSharing:  {0, 20, 40, 60, 80, 100},
	MixMultiGPU: {0, 10, 20, 30, 40, 50},
	MixGPUModel: {0, 5, 10, 20, 33},
}

// MixRow is one mix on one seed: unallocated GPU % at 100% arrived per
// policy, and Ark's margin over FGD.
type MixRow struct {
	Class    MixClass `json:"class"`
	Pct      int      `json:"pct"`
	Base     string   `json:"base_list"`
	Seed     uint64   `json:"seed"`
	Share    float64  `json:"measured_share_pct"`
	Arrivals int      `json:"arrivals"`
	Ark      float64  `json:"ark"`
	FGD      float64  `json:"fgd"`
	BestFit  float64  `json:"bestfit"`
	// Margin is FGD's unallocated % minus Ark's: above 0, Ark leaves fewer
	// GPUs unallocated.
	Margin float64 `json:"margin"`
}

// Verdicts of a mix over its seeds.
const (
	VerdictWin    = "win"           // mean margin > spread: every seed won, by more than the seeds differ
	VerdictLoss   = "loss"          // mean margin < -spread
	VerdictWithin = "within spread" // |mean margin| <= spread
)

// Readings of the paired t-test (MixSummary.Test).
const (
	TestWon  = "won"
	TestLost = "lost"
	TestTie  = "tie"
)

// MixSummary is one mix over its seeds. Spread is the seed-to-seed spread
// of the margin (max - min over seeds): Ark beats FGD on the mix by more
// than the spread when MarginMean > Spread (which makes every seed's margin
// positive). With one seed the spread is 0 and the verdict is the margin's
// sign alone.
//
// The range grows with the number of seeds (more seeds, more extreme
// ones), so the verdict gets stricter the more data there is. Test is the
// reading that does not: a one-sided paired t-test of the margins at 95%
// (Won when the mean margin exceeds t(0.95, n-1) standard errors, Lost in
// the mirror, Tie otherwise; Tie with fewer than two seeds).
type MixSummary struct {
	Class       MixClass `json:"class"`
	Pct         int      `json:"pct"`
	ArkMean     float64  `json:"ark_mean"`
	FGDMean     float64  `json:"fgd_mean"`
	BestFitMean float64  `json:"bestfit_mean"`
	MarginMean  float64  `json:"margin_mean"`
	MarginMin   float64  `json:"margin_min"`
	MarginMax   float64  `json:"margin_max"`
	Spread      float64  `json:"spread"`
	Verdict     string   `json:"verdict"`
	Seeds       int      `json:"seeds"`
	// MarginSD is the margin's sample standard deviation over the seeds.
	MarginSD float64 `json:"margin_sd"`
	// SeedsWon and SeedsLost count the seeds with a margin above and
	// below 0.
	SeedsWon  int    `json:"seeds_won"`
	SeedsLost int    `json:"seeds_lost"`
	Test      string `json:"t_test"`
}

// MixReport is the mix sweep: every mix and seed, a summary per mix, and
// the counts of verdicts.
type MixReport struct {
	Seeds   []uint64     `json:"seeds"`
	Rows    []MixRow     `json:"rows"`
	Summary []MixSummary `json:"summary"`
	Wins    int          `json:"wins"`
	Within  int          `json:"within_spread"`
	Losses  int          `json:"losses"`
	// TestWins, TestTies and TestLosses count the mixes by the t-test.
	TestWins   int `json:"t_test_wins"`
	TestTies   int `json:"t_test_ties"`
	TestLosses int `json:"t_test_losses"`
}

// mixJob is one (class, share, seed) of the sweep.
type mixJob struct {
	class MixClass
	pct   int
	seed  uint64
}

// RunMixSweep replays Ark, FGD and best fit on every mix of the classes
// (all when empty) and shares (each class's MixPcts, or those of pcts it
// has), on every seed. A mix's sequence is Generate(Mix(base, ...), seed)
// with nodes tied in MixNodeOrder(seed): the reference simulator's arrival
// files exist only for its five lists, so these orders are made the same
// way (sort by name, seeded shuffle, top up to 130% with seeded clones)
// with Go's PCG. FGD gets the mix list's own shape distribution, as the
// paper's FGD does; Ark learns it online as always.
func RunMixSweep(data string, nodes []Node, classes []MixClass, pcts []int, seeds []uint64, progress io.Writer) (*MixReport, error) {
	if len(classes) == 0 {
		classes = MixClasses
	}
	if len(seeds) == 0 {
		seeds = []uint64{42, 43, 44}
	}
	bases := map[MixClass][]Pod{}
	var jobs []mixJob
	for _, c := range classes {
		if !c.Valid() {
			return nil, fmt.Errorf("%w: mix class %q: want one of %v", ErrConfig, c, MixClasses)
		}
		list, err := LoadPods(filepath.Join(data, "openb_pod_list_"+MixBase[c]+".csv.gz"))
		if err != nil {
			return nil, err
		}
		bases[c] = list
		for _, pct := range MixPcts[c] {
			if len(pcts) > 0 && !slices.Contains(pcts, pct) {
				continue
			}
			for _, s := range seeds {
				jobs = append(jobs, mixJob{c, pct, s})
			}
		}
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("%w: --mix-pct %v names no share of the classes %v (shares: %v)", ErrConfig, pcts, classes, MixPcts)
	}
	var total int64
	for _, n := range nodes {
		total += int64(n.GPUs) * placement.MilliPerGPU
	}
	rows := make([]MixRow, len(jobs))
	errs := make([]error, len(jobs))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
	)
	// The replays are independent: one per core, results in job order.
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(jobs) {
					return
				}
				rows[i], errs[i] = runMix(nodes, total, bases[jobs[i].class], jobs[i])
				if errs[i] == nil && progress != nil {
					r := rows[i]
					mu.Lock()
					fmt.Fprintf(progress, "mix %s %d%% seed %d: ark %.2f fgd %.2f bestfit %.2f\n", r.Class, r.Pct, r.Seed, r.Ark, r.FGD, r.BestFit)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	rep := &MixReport{Seeds: seeds, Rows: rows}
	rep.summarise()
	return rep, nil
}

func runMix(nodes []Node, total int64, base []Pod, j mixJob) (MixRow, error) {
	list, err := Mix(base, j.class, j.pct, j.seed)
	if err != nil {
		return MixRow{}, err
	}
	pods := Generate(list, j.seed, total)
	rank := MixNodeOrder(nodes, j.seed)
	tasks := make([]placement.Task, len(list))
	for i, p := range list {
		tasks[i] = p.Task()
	}
	dist := placement.TypicalShapes(tasks, 95)
	row := MixRow{Class: j.class, Pct: j.pct, Base: MixBase[j.class], Seed: j.seed, Share: round2(MixShare(list, j.class)), Arrivals: len(pods)}
	for _, name := range []string{"ark", "fgd", "bestfit"} {
		p, err := placement.NewPolicy(name, dist, j.seed)
		if err != nil {
			return MixRow{}, err
		}
		res, err := Replay(nodes, rank, pods, p)
		if err != nil {
			return MixRow{}, err
		}
		switch name {
		case "ark":
			row.Ark = res.Unallocated
		case "fgd":
			row.FGD = res.Unallocated
		case "bestfit":
			row.BestFit = res.Unallocated
		}
	}
	row.Margin = round2(row.FGD - row.Ark)
	return row, nil
}

// summarise groups the rows by mix (in row order) and counts verdicts.
func (r *MixReport) summarise() {
	r.Summary, r.Wins, r.Within, r.Losses = nil, 0, 0, 0
	r.TestWins, r.TestTies, r.TestLosses = 0, 0, 0
	var margins [][]float64 // per mix
	for _, x := range r.Rows {
		k := len(r.Summary) - 1
		if k < 0 || r.Summary[k].Class != x.Class || r.Summary[k].Pct != x.Pct {
			r.Summary = append(r.Summary, MixSummary{Class: x.Class, Pct: x.Pct, MarginMin: x.Margin, MarginMax: x.Margin})
			margins = append(margins, nil)
			k++
		}
		margins[k] = append(margins[k], x.Margin)
		s := &r.Summary[k]
		s.Seeds++
		switch {
		case x.Margin > 0:
			s.SeedsWon++
		case x.Margin < 0:
			s.SeedsLost++
		}
		s.ArkMean += x.Ark
		s.FGDMean += x.FGD
		s.BestFitMean += x.BestFit
		s.MarginMean += x.Margin
		s.MarginMin, s.MarginMax = min(s.MarginMin, x.Margin), max(s.MarginMax, x.Margin)
	}
	for i := range r.Summary {
		s := &r.Summary[i]
		n := float64(s.Seeds)
		s.ArkMean, s.FGDMean, s.BestFitMean = round2(s.ArkMean/n), round2(s.FGDMean/n), round2(s.BestFitMean/n)
		mean := s.MarginMean / n
		sd := sampleSD(margins[i], mean)
		s.MarginMean, s.MarginSD = round2(mean), round2(sd)
		s.Test = pairedT(mean, sd, s.Seeds)
		switch s.Test {
		case TestWon:
			r.TestWins++
		case TestLost:
			r.TestLosses++
		default:
			r.TestTies++
		}
		s.Spread = round2(s.MarginMax - s.MarginMin)
		s.Verdict = verdict(s.MarginMean, s.Spread)
		switch s.Verdict {
		case VerdictWin:
			r.Wins++
		case VerdictLoss:
			r.Losses++
		default:
			r.Within++
		}
	}
}

// sampleSD is the sample standard deviation of xs about mean (0 for fewer
// than two).
func sampleSD(xs []float64, mean float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss / float64(len(xs)-1))
}

// tCritical95 is Student's t at one-sided 95% for 1 to 30 degrees of
// freedom; beyond, the 30's (a little above the normal's 1.645, so the
// test stays on the strict side).
var tCritical95 = [...]float64{0, 6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
	1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725,
	1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697}

// pairedT reads n paired margins with this mean and sample deviation.
func pairedT(mean, sd float64, n int) string {
	if n < 2 {
		return TestTie
	}
	t := tCritical95[min(n-1, len(tCritical95)-1)]
	bar := t * sd / math.Sqrt(float64(n))
	switch {
	case mean > bar:
		return TestWon
	case mean < -bar:
		return TestLost
	}
	return TestTie
}

func verdict(mean, spread float64) string {
	switch {
	case mean > spread:
		return VerdictWin
	case mean < -spread:
		return VerdictLoss
	}
	return VerdictWithin
}

// WriteMarkdown writes the sweep: every mix and seed, then the summary.
func (r *MixReport) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\nWorkload mixes (the FGD paper's sweep): each class's share inflated in a trace list, seeds %v;\n", r.Seeds)
	fmt.Fprintf(w, "unallocated GPU %% at 100%% arrived (lower is better); margin = FGD - Ark (above 0: Ark better).\n\n")
	fmt.Fprintf(w, "| mix | base list | seed | share measured %% | arrivals | Ark | FGD | best fit | margin |\n")
	fmt.Fprintf(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, x := range r.Rows {
		fmt.Fprintf(w, "| %s %d%% | %s | %d | %.2f | %d | %.2f | %.2f | %.2f | %+.2f |\n", x.Class, x.Pct, x.Base, x.Seed, x.Share, x.Arrivals, x.Ark, x.FGD, x.BestFit, x.Margin)
	}
	fmt.Fprintf(w, "\nPer mix over the seeds (spread = max - min of the margin; win: mean margin > spread; t-test: one-sided paired, 95%%).\n\n")
	fmt.Fprintf(w, "| mix | Ark mean | FGD mean | best fit mean | margin mean | margin sd | margin min | margin max | spread | seeds won / lost | verdict | t-test |\n")
	fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, s := range r.Summary {
		fmt.Fprintf(w, "| %s %d%% | %.2f | %.2f | %.2f | %+.2f | %.2f | %+.2f | %+.2f | %.2f | %d / %d | %s | %s |\n", s.Class, s.Pct, s.ArkMean, s.FGDMean, s.BestFitMean, s.MarginMean, s.MarginSD, s.MarginMin, s.MarginMax, s.Spread, s.SeedsWon, s.SeedsLost, s.Verdict, s.Test)
	}
	fmt.Fprintf(w, "\nArk beats FGD by more than the seed-to-seed spread on %d of %d mixes; within the spread on %d; loses by more than it on %d.\n",
		r.Wins, len(r.Summary), r.Within, r.Losses)
	fmt.Fprintf(w, "By the paired t-test: Ark wins %d, ties %d, loses %d.\n\n", r.TestWins, r.TestTies, r.TestLosses)
}
