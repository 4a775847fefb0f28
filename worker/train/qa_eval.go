package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Evaluation on a dataset of prompt/answer pairs: each checkpoint answers
// every prompt greedily, and its answers are scored against the expected
// ones by exact match and by word overlap (SQuAD's F1 over lowercased
// words, punctuation dropped): the figures a user reads to choose between
// a base and its specialists on their own questions.

// QAPair is one prompt and the answer expected of it.
type QAPair struct {
	Prompt string `json:"prompt"`
	Answer string `json:"answer"`
}

// MaxQAPairs bounds a dataset: each pair is a generation.
const MaxQAPairs = 10000

// ReadQAPairs reads JSON lines of {"prompt", "answer"}; blank lines are
// skipped, anything else that is not such an object is an error naming
// its line.
func ReadQAPairs(r io.Reader) ([]QAPair, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []QAPair
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var p QAPair
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("line %d: %w (want {\"prompt\": ..., \"answer\": ...})", n, err)
		}
		if p.Prompt == "" {
			return nil, fmt.Errorf("line %d: prompt is empty", n)
		}
		if len(out) == MaxQAPairs {
			return nil, fmt.Errorf("line %d: more than %d pairs", n, MaxQAPairs)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no prompt/answer pairs")
	}
	return out, nil
}

// EvalQA answers every pair's prompt with the checkpoint uri (greedy, at
// most maxTokens tokens, the answer ending at its first newline) and
// scores the answers.
func (e *Evaluator) EvalQA(ctx context.Context, uri string, pairs []QAPair, maxTokens int) (EvalRow, error) {
	return e.with(ctx, uri, func(m *Model, row *EvalRow) error {
		var exact, overlap float64
		for i, p := range pairs {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := maxTokens
			if n <= 0 {
				// Enough for the expected answer and a little more.
				n = min(64, len(m.Tokenizer().Encode([]byte(p.Answer)))+4)
			}
			out, err := m.Generate([]byte(p.Prompt), n, 0, 1)
			if err != nil {
				return fmt.Errorf("pair %d: %w", i+1, err)
			}
			got, _, _ := strings.Cut(string(out), "\n")
			if normalizeAnswer(got) == normalizeAnswer(p.Answer) {
				exact++
			}
			overlap += wordF1(got, p.Answer)
		}
		em, ov := exact/float64(len(pairs)), overlap/float64(len(pairs))
		row.ExactMatch, row.Overlap, row.Samples = &em, &ov, len(pairs)
		return nil
	})
}

// normalizeAnswer is an answer as compared: words lowercased, punctuation
// dropped, single spaces.
func normalizeAnswer(s string) string { return strings.Join(answerWords(s), " ") }

func answerWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsPunct(r)
	})
}

// wordF1 is the harmonic mean of the precision and recall of got's words
// against want's (each word counted as often as it occurs); two empty
// answers agree.
func wordF1(got, want string) float64 {
	g, w := answerWords(got), answerWords(want)
	if len(g) == 0 || len(w) == 0 {
		if len(g) == len(w) {
			return 1
		}
		return 0
	}
	counts := map[string]int{}
	for _, x := range w {
		counts[x]++
	}
	common := 0
	for _, x := range g {
		if counts[x] > 0 {
			counts[x]--
			common++
		}
	}
	if common == 0 {
		return 0
	}
	p, r := float64(common)/float64(len(g)), float64(common)/float64(len(w))
	return 2 * p * r / (p + r)
}
