package rules

import (
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
)

// TestMaxMatchBytes: a bounded regex holds back only its longest match;
// an unbounded one, or one with assertions, the whole Window.
func TestMaxMatchBytes(t *testing.T) {
	cases := []struct {
		re string
		n  int
		ok bool
	}{
		{`secret`, 6, true},
		{`xq0zj\w{0,8}`, 13, true},
		{`\bxq0zj\w{0,8}`, 0, false}, // assertions read context: the whole window
		{`^\s?[A-Z]{2}$`, 0, false},
		{`\d{3}-\d{4}`, 8, true},
		{`(?i)kelvin`, 8, true}, // k and K may be the Kelvin sign: 3 bytes
		{`a|bcd|ef`, 3, true},
		{`é+`, 0, false},
		{`x.*y`, 0, false},
		{`\s?[A-Z]{2}`, 3, true},
		{`.`, 4, true},
		{`[a-zé]`, 2, true},
		{`(`, 0, false},
	}
	for _, tc := range cases {
		n, ok := maxMatchBytes(tc.re)
		if n != tc.n || ok != tc.ok {
			t.Errorf("maxMatchBytes(%q) = %d %v, want %d %v", tc.re, n, ok, tc.n, tc.ok)
		}
	}
}

// FuzzBoundedRegexWindow: with the window cut to a bounded regex's
// longest match, text streamed in any split leaves the filter exactly as
// the whole text does.
func FuzzBoundedRegexWindow(f *testing.F) {
	f.Add(`\d{3}-\d{4}`, "call 555-1234 now", 2)
	f.Add(`ab|a`, "xaby", 1)
	f.Add(`(?i)k[a-z]{0,3}`, "the Kelvin kit", 3)
	f.Fuzz(func(t *testing.T, pattern, text string, split int) {
		if _, ok := maxMatchBytes(pattern); !ok || len(pattern) > 64 || len(text) > 512 {
			return
		}
		s, err := Compile([]spec.Rule{{ID: "r", On: spec.RuleOutput, Regex: pattern, Action: spec.RuleMask, Mask: "#"}})
		if err != nil {
			return
		}
		one := s.Output("m")
		w1, _ := one.Write(text)
		w2, _ := one.Close()
		want := w1 + w2
		if got := streamed(s.Output("m"), text, split); got != want {
			t.Fatalf("pattern %q on %q split by %d: streamed %q, whole %q", pattern, text, split, got, want)
		}
	})
}
