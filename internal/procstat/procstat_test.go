package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		line string
		want Stat
	}{
		{"plain", "1234 (ark) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 12 0 5 0 7",
			Stat{State: 'S', CPU: 2810 * time.Millisecond, StartTime: 5, RSS: 7 * 4096}},
		// A command name with a space and parentheses, as /proc may show.
		{"a name with spaces and parens", "4242 (ark (srv) x) Z 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 900000000 2560 18446744073709551615",
			Stat{State: 'Z', CPU: 3 * time.Second, StartTime: 100, RSS: 2560 * 4096}},
	}
	for _, tc := range cases {
		got, err := Parse(tc.line, 4096)
		if err != nil || got != tc.want {
			t.Errorf("%s: Parse = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"no name here", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 50 0 0 20 0 1 0 1 1 1", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 50 0 0 20 0 1 0 -5 1 1"} {
		if got, err := Parse(bad, 4096); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestReadSelf(t *testing.T) {
	st, err := Read(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if st.State != 'R' && st.State != 'S' || st.StartTime == 0 || st.RSS <= 0 {
		t.Errorf("Read(self) = %+v", st)
	}
}
