package rules

import (
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
)

var testRules = []spec.Rule{
	{ID: "no-secrets", On: spec.RuleOutput, Keywords: []string{"password", "API key"}, Action: spec.RuleMask, Mask: "***"},
	{ID: "no-poison", On: spec.RuleOutput, Regex: `poison(ed|ing)?`, Action: spec.RuleBlock, Answer: "I cannot help with that."},
	{ID: "legal-to-adapter", On: spec.RuleInput, Keywords: []string{"contract"}, Action: spec.RuleRoute, Route: "legal"},
	{ID: "pii", On: spec.RuleInput, Regex: `\b\d{3}-\d{2}-\d{4}\b`, Action: spec.RuleMask},
	{ID: "base-only", On: spec.RuleInput, Models: []string{"gpt-tiny"}, Keywords: []string{"forbidden"}, Action: spec.RuleBlock, Answer: "No."},
}

func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    spec.Rule
		want string
	}{
		{"bad regex", spec.Rule{ID: "r", On: "output", Regex: "a(", Action: "mask"}, "rules[0].regex: error parsing regexp"},
		{"no matcher", spec.Rule{ID: "r", On: "output", Action: "mask"}, "rules[0]: needs keywords or a regex"},
		{"regex matching empty text", spec.Rule{ID: "r", On: "output", Regex: "0?", Action: "mask"}, `rules[0].regex: matches empty text ("0?")`},
		{"block without answer", spec.Rule{ID: "r", On: "input", Keywords: []string{"x"}, Action: "block"}, "rules[0].answer: is required"},
		{"route on output", spec.Rule{ID: "r", On: "output", Keywords: []string{"x"}, Action: "route", Route: "a"}, "rules[0].action: route acts on the prompt"},
		{"unknown action", spec.Rule{ID: "r", On: "input", Keywords: []string{"x"}, Action: "drop"}, `rules[0].action: must be block, mask or route, got "drop"`},
		{"bad id", spec.Rule{ID: "a b", On: "input", Keywords: []string{"x"}, Action: "mask"}, `rules[0].id: must be`},
	} {
		_, err := Compile([]spec.Rule{tc.r})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestInput(t *testing.T) {
	s, err := Compile(testRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		model, prompt, want, action, route string
	}{
		{"gpt-tiny", "hello", "hello", "", ""},
		{"gpt-tiny", "my SSN is 123-45-6789.", "my SSN is [removed].", "mask", ""},
		{"gpt-tiny", "review this Contract please", "review this Contract please", "route", "legal"},
		{"gpt-tiny", "a forbidden topic", "a forbidden topic", "block", ""},
		{"legal", "a forbidden topic", "a forbidden topic", "", ""}, // the rule is for the base only
	} {
		got, ds := s.Input(tc.model, tc.prompt)
		action, route := "", ""
		if len(ds) > 0 {
			action, route = ds[len(ds)-1].Action, ds[len(ds)-1].Route
		}
		if got != tc.want || action != tc.action || route != tc.route {
			t.Errorf("Input(%q, %q) = %q, %s %s; want %q, %s %s", tc.model, tc.prompt, got, action, route, tc.want, tc.action, tc.route)
		}
	}
}

// The filter's result does not depend on how the text is split into
// chunks: a phrase split over tokens is caught whole.
func TestOutputAcrossChunks(t *testing.T) {
	s, err := Compile(testRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text, want string
		blocked    bool
	}{
		{"nothing to see here", "nothing to see here", false},
		{"the password is hunter2", "the *** is hunter2", false},
		{"your api KEY and PASSWORD", "your *** and ***", false},
		{"how to make poisoned bread", "how to make ", true},
		{"ünïcödé password ✓", "ünïcödé *** ✓", false},
	} {
		// Every split into two chunks, and one byte at a time.
		splits := [][]string{}
		for i := 0; i <= len(tc.text); i++ {
			splits = append(splits, []string{tc.text[:i], tc.text[i:]})
		}
		bytes := []string{}
		for i := range len(tc.text) {
			bytes = append(bytes, tc.text[i:i+1])
		}
		splits = append(splits, bytes)
		for _, chunks := range splits {
			f := s.Output("gpt-tiny")
			var out strings.Builder
			blocked := false
			for _, c := range chunks {
				got, d := f.Write(c)
				out.WriteString(got)
				if d != nil {
					blocked = true
					break
				}
			}
			if !blocked {
				got, d := f.Close()
				out.WriteString(got)
				blocked = d != nil
			}
			if out.String() != tc.want || blocked != tc.blocked {
				t.Fatalf("%q in chunks %q: released %q (blocked %v), want %q (blocked %v)", tc.text, chunks, out.String(), blocked, tc.want, tc.blocked)
			}
		}
	}
	if h := s.Hits(); h["no-secrets"] == 0 || h["no-poison"] == 0 {
		t.Errorf("hits %v", h)
	}
}

// Text is released as it comes, except the window that may still grow
// into a match.
func TestOutputReleasesEarly(t *testing.T) {
	s, err := Compile([]spec.Rule{{ID: "k", On: spec.RuleOutput, Keywords: []string{"secret"}, Action: spec.RuleMask}})
	if err != nil {
		t.Fatal(err)
	}
	f := s.Output("m")
	got, _ := f.Write("a long line of harmless text")
	if want := "a long line of harmless"; got != want {
		t.Fatalf("released %q, want %q (all but the last %d bytes)", got, want, len("secret")-1)
	}
}

func TestNoRules(t *testing.T) {
	s, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Output("m"); f != nil {
		t.Fatal("a filter without output rules")
	}
	if got, ds := s.Input("m", "x"); got != "x" || ds != nil {
		t.Fatal("input changed without rules")
	}
}

// BenchmarkInput100 is the cost of 100 keyword and regex input rules on a
// typical prompt: the latency rules add before a request is queued.
func BenchmarkInput100(b *testing.B) {
	var rs []spec.Rule
	for i := range 100 {
		r := spec.Rule{ID: "r" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), On: spec.RuleInput, Action: spec.RuleMask}
		if i%2 == 0 {
			r.Keywords = []string{"forbidden" + r.ID, "other" + r.ID}
		} else {
			r.Regex = `\bsecret` + r.ID + `\d+\b`
		}
		rs = append(rs, r)
	}
	s, err := Compile(rs)
	if err != nil {
		b.Fatal(err)
	}
	prompt := strings.Repeat("Tell me about the history of the Roman empire and its roads. ", 8)
	b.ResetTimer()
	for b.Loop() {
		s.Input("m", prompt)
	}
}

// BenchmarkOutput100 is the cost of 100 output rules per generated token
// (a few bytes each) over a 200-token answer.
func BenchmarkOutput100(b *testing.B) {
	var rs []spec.Rule
	for i := range 100 {
		r := spec.Rule{ID: "r" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), On: spec.RuleOutput, Action: spec.RuleMask}
		if i%2 == 0 {
			r.Keywords = []string{"forbidden" + r.ID}
		} else {
			r.Regex = `secret` + r.ID + `\d+`
		}
		rs = append(rs, r)
	}
	s, err := Compile(rs)
	if err != nil {
		b.Fatal(err)
	}
	tokens := strings.Fields(strings.Repeat("the roads of the empire ran far ", 40))
	b.ResetTimer()
	for b.Loop() {
		f := s.Output("m")
		for _, t := range tokens[:200] {
			f.Write(t + " ")
		}
		f.Close()
	}
}

// FuzzOutputFilter: with a keyword rule from the input, whatever the text
// and its split into chunks, the filter never panics and never releases
// the keyword (masked) whole.
func FuzzOutputFilter(f *testing.F) {
	f.Add("secret", "the secret is out", 3)
	f.Add("ü", "ünïcödé ü", 1)
	f.Fuzz(func(t *testing.T, kw, text string, split int) {
		if strings.TrimSpace(kw) == "" || len(kw) > 256 {
			return
		}
		s, err := Compile([]spec.Rule{{ID: "k", On: spec.RuleOutput, Keywords: []string{kw}, Action: spec.RuleMask, Mask: "\x00"}})
		if err != nil {
			if !strings.Contains(err.Error(), "rules[0].keywords[0]") {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		out := streamed(s.Output("m"), text, split)
		if isASCII(kw) && strings.Contains(lowerASCII(out), lowerASCII(kw)) && !strings.Contains(kw, "\x00") {
			t.Fatalf("keyword %q released in %q", kw, out)
		}
	})
}

// streamed is what a filter releases of text written in pieces of split
// bytes (at least 1), then closed.
func streamed(fl *Filter, text string, split int) string {
	var out strings.Builder
	split = max(split, 1)
	for i := 0; i < len(text); i += split {
		got, _ := fl.Write(text[i:min(len(text), i+split)])
		out.WriteString(got)
	}
	got, _ := fl.Close()
	out.WriteString(got)
	return out.String()
}
