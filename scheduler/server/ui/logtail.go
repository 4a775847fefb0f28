package ui

import (
	"bytes"
	"regexp"
	"strconv"
)

// logTail reads a task's stdout as it streams past: it keeps the last
// lines and every training figure the builtin trainer prints, whose lines
// read (worker/train/trainer.go)
//
//	step 120/300 loss 2.3100 lr 3.00e-04 grad-norm 0.812 tok/s/rank 5120 rank 0/2
//
// The state holds only the last such line (an allocation's Progress), so
// the curve comes from the log.
type logTail struct {
	keep    int
	lines   []string
	partial []byte
	loss    []point
	tps     []point
}

type point struct{ step, v float64 }

// maxPoints bounds what a very long run keeps; the chart shows at most a
// few hundred points anyway (thin).
const maxPoints = 20000

var (
	stepRe = regexp.MustCompile(`\bstep (\d+)(?:/\d+)?\b`)
	lossRe = regexp.MustCompile(`\bloss ([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)\b`)
	tpsRe  = regexp.MustCompile(`\btok/s(?:/rank)? ([0-9]+(?:\.[0-9]+)?)\b`)
)

func newLogTail(keep int) *logTail { return &logTail{keep: keep} }

// Write takes the next bytes of the log.
func (t *logTail) Write(b []byte) (int, error) {
	n := len(b)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.partial = append(t.partial, b...)
			if len(t.partial) > 64<<10 { // a line that never ends: keep its start
				t.partial = t.partial[:64<<10]
			}
			return n, nil
		}
		t.line(string(append(t.partial, b[:i]...)))
		t.partial, b = t.partial[:0], b[i+1:]
	}
}

// Close takes a last line the log did not end.
func (t *logTail) Close() {
	if len(t.partial) > 0 {
		t.line(string(t.partial))
		t.partial = nil
	}
}

func (t *logTail) line(s string) {
	t.lines = append(t.lines, s)
	if len(t.lines) > 2*t.keep {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.keep:]...)
	}
	m := stepRe.FindStringSubmatch(s)
	if m == nil {
		return
	}
	step, _ := strconv.ParseFloat(m[1], 64)
	if l := lossRe.FindStringSubmatch(s); l != nil && len(t.loss) < maxPoints {
		v, err := strconv.ParseFloat(l[1], 64)
		if err == nil {
			t.loss = append(t.loss, point{step, v})
		}
	}
	if r := tpsRe.FindStringSubmatch(s); r != nil && len(t.tps) < maxPoints {
		v, err := strconv.ParseFloat(r[1], 64)
		if err == nil {
			t.tps = append(t.tps, point{step, v})
		}
	}
}

// last returns the kept lines, at most keep of them.
func (t *logTail) last() []string {
	if len(t.lines) > t.keep {
		return t.lines[len(t.lines)-t.keep:]
	}
	return t.lines
}
