package rules

import "testing"

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
