package bf16

import (
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // halfway, even below: stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // halfway, odd below: rounds up to even
		{math.Float32frombits(0x3f808001), 0x3f81}, // past halfway: up
		{float32(math.Inf(1)), 0x7f80},
		{math.Float32frombits(0x7f7fffff), 0x7f80}, // the largest float32 rounds to +Inf
	}
	for _, tc := range cases {
		if got := FromFloat32(tc.in); got != tc.want {
			t.Errorf("FromFloat32(%#x) = %#04x, want %#04x", math.Float32bits(tc.in), got, tc.want)
		}
		if tc.want != 0x7f80 {
			if back := ToFloat32(tc.want); FromFloat32(back) != tc.want {
				t.Errorf("%#04x does not survive a round trip", tc.want)
			}
		}
	}
	nan := FromFloat32(math.Float32frombits(0x7f800001)) // a NaN whose payload would round to Inf
	if !math.IsNaN(float64(ToFloat32(nan))) {
		t.Errorf("NaN became %#04x", nan)
	}
}
