package ui

import (
	"strconv"
	"strings"
	"testing"
)

func TestFraction(t *testing.T) {
	for _, tc := range []struct {
		milli int64
		want  string
	}{
		{1000, "1"}, {2000, "2"}, {500, "1/2"}, {250, "1/4"}, {750, "3/4"}, {333, "1/3"}, {125, "1/8"}, {1500, "3/2"}, {100, "0.1"}, {1, "0.001"},
	} {
		if got := fraction(tc.milli); got != tc.want {
			t.Errorf("fraction(%d) = %q, want %q", tc.milli, got, tc.want)
		}
	}
}

func TestLogTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		keep   int
		last   []string
		loss   []point
		tps    []point
	}{
		{"trainer lines split anywhere", []string{"step 1/3 loss 4.5", "000 tok/s/rank 10\nnoise\nstep 2/3 loss 3e-1 tok/s 12.5\n", "step 3/3 loss 0.25"}, 2,
			[]string{"step 2/3 loss 3e-1 tok/s 12.5", "step 3/3 loss 0.25"},
			[]point{{1, 4.5}, {2, 0.3}, {3, 0.25}}, []point{{1, 10}, {2, 12.5}}},
		{"no figures", []string{"hello\nworld\n"}, 5, []string{"hello", "world"}, nil, nil},
		{"a loss without a step is no point", []string{"loss 2.0\nstepping 3 loss 1\n"}, 5, []string{"loss 2.0", "stepping 3 loss 1"}, nil, nil},
	} {
		lt := newLogTail(tc.keep)
		for _, c := range tc.chunks {
			lt.Write([]byte(c))
		}
		lt.Close()
		if got := strings.Join(lt.last(), "|"); got != strings.Join(tc.last, "|") {
			t.Errorf("%s: last lines %q, want %q", tc.name, lt.last(), tc.last)
		}
		if !samePoints(lt.loss, tc.loss) || !samePoints(lt.tps, tc.tps) {
			t.Errorf("%s: loss %v tok/s %v, want %v %v", tc.name, lt.loss, lt.tps, tc.loss, tc.tps)
		}
	}
}

func samePoints(a, b []point) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestChart: every point lies inside the plot, the first at its left and
// the last at its right, the highest at its top; long series are thinned.
func TestChart(t *testing.T) {
	for _, n := range []int{1, 2, 50, 5000} {
		var pts []point
		for i := 0; i < n; i++ {
			pts = append(pts, point{float64(i * 10), 5 / float64(i+1)})
		}
		c := newChart("loss", pts)
		xy := strings.Fields(c.Points)
		if len(xy) != min(n, chartPoints) || c.N != len(xy) {
			t.Errorf("%d points: drew %d (N %d)", n, len(xy), c.N)
		}
		for i, p := range xy {
			x, y, _ := strings.Cut(p, ",")
			fx, _ := strconv.ParseFloat(x, 64)
			fy, _ := strconv.ParseFloat(y, 64)
			if fx < padL || fx > chartW-padR || fy < padT || fy > chartH-padB {
				t.Errorf("%d points: point %d (%s) outside the plot", n, i, p)
			}
		}
		if n > 1 && (!strings.HasPrefix(c.Points, "56.0,8.0 ") || !strings.HasSuffix(c.Points, ",176.0") || !strings.Contains(xy[len(xy)-1], "592.0,")) {
			t.Errorf("%d points: first %s last %s, want 56.0,8.0 and 592.0,176.0", n, xy[0], xy[len(xy)-1])
		}
	}
	if newChart("loss", nil) != nil {
		t.Error("a chart of no points")
	}
}

// TestDrawCellsEscapes: the hand-written cells escape what they write as
// html/template would.
func TestDrawCellsEscapes(t *testing.T) {
	got := string(drawCells([]gpuCell{
		{Index: 0, Class: "c1", JobID: `x"><script>alert(1)</script>`, Title: `a "b" <c> & d`, Share: "1/2"},
		{Index: 1, Class: "free", Title: "n GPU 1: free"},
	}))
	want := `<a class="gpu c1" href="/ui/jobs/x%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E" title="a &#34;b&#34; &lt;c&gt; &amp; d">0<small>1/2</small></a>` +
		`<span class="gpu free" title="n GPU 1: free">1</span>`
	if got != want {
		t.Errorf("cells\n%s\nwant\n%s", got, want)
	}
}

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{{4.72701, "4.727"}, {0.000123456, "0.0001235"}, {36956.4, "36956"}, {1000, "1000"}, {999.96, "1000"}, {12, "12"}} {
		if got := num(tc.f); got != tc.want {
			t.Errorf("num(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}
