package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
)

func TestReadQAPairs(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		n             int
	}{
		{"two pairs and a blank line", "{\"prompt\": \"Q: a\\nA:\", \"answer\": \"b\"}\n\n{\"prompt\": \"x\", \"answer\": \"\"}\n", "", 2},
		{"not JSON", "{\"prompt\": \"a\"}\nnope\n", "line 2: ", 0},
		{"unknown field", `{"prompt": "a", "expected": "b"}`, `line 1: json: unknown field "expected"`, 0},
		{"empty prompt", `{"prompt": "", "answer": "b"}`, "line 1: prompt is empty", 0},
		{"nothing", "\n\n", "no prompt/answer pairs", 0},
	} {
		got, err := ReadQAPairs(strings.NewReader(tc.in))
		switch {
		case tc.err == "" && (err != nil || len(got) != tc.n):
			t.Errorf("%s: %d pairs, %v", tc.name, len(got), err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestAnswerScores(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		exact     bool
		f1        float64
	}{
		{"Paris", "paris.", true, 1},
		{"the city of Paris", "Paris", false, 0.4},
		{"London", "Paris", false, 0},
		{"", "", true, 1},
		{"a a b", "a b b", false, 2.0 / 3},
	} {
		if e := normalizeAnswer(tc.got) == normalizeAnswer(tc.want); e != tc.exact {
			t.Errorf("exact(%q, %q) = %v", tc.got, tc.want, e)
		}
		if f := wordF1(tc.got, tc.want); math.Abs(f-tc.f1) > 1e-9 {
			t.Errorf("wordF1(%q, %q) = %v, want %v", tc.got, tc.want, f, tc.f1)
		}
	}
}

// EvalQA scores a checkpoint's own greedy answers as exact, and answers
// it does not give as not.
func TestEvalQA(t *testing.T) {
	ctx := context.Background()
	base, err := filepath.Abs("../../examples/base/gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); err != nil {
		t.Skipf("no shipped base: %v", err)
	}
	d := cpu.New(1)
	m, _, err := LoadModel(ctx, d, "file://"+base, nil)
	if err != nil {
		t.Fatal(err)
	}
	own, err := m.Generate([]byte("ROMEO:"), 8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(own), "\n")
	pairs := []QAPair{{Prompt: "ROMEO:", Answer: first}, {Prompt: "ROMEO:", Answer: "zzzz qqqq"}}
	row, err := NewEvaluator(d, nil).EvalQA(ctx, "file://"+base, pairs, 8)
	if err != nil {
		t.Fatal(err)
	}
	if row.Samples != 2 || row.ExactMatch == nil || *row.ExactMatch != 0.5 || row.Overlap == nil || *row.Overlap != 0.5 {
		t.Fatalf("row %+v (answer %q)", row, first)
	}
}

// FuzzReadQAPairs: any input is pairs or an error naming a line, never a
// panic, and every pair read has a prompt.
func FuzzReadQAPairs(f *testing.F) {
	f.Add([]byte("{\"prompt\": \"Q\", \"answer\": \"A\"}\n"))
	f.Add([]byte("\n\n{\"prompt\": \"\"}"))
	f.Add([]byte("{\"prompt\": \"a\", \"answer\": 3}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pairs, err := ReadQAPairs(strings.NewReader(string(data)))
		if err != nil {
			if !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "no prompt/answer pairs") && !strings.Contains(err.Error(), "token too long") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for i, p := range pairs {
			if p.Prompt == "" {
				t.Fatalf("pair %d has no prompt", i)
			}
		}
	})
}
