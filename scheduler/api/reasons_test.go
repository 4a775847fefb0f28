package api

import "testing"

// TestSameHolders: the FSM and the leader rewrite a pending reason whose
// text stays when the jobs it names change; reasons that name none
// compare equal whatever else differs (entries written before holders).
func TestSameHolders(t *testing.T) {
	r := func(rule string, holders ...string) Reason {
		return Reason{Rule: rule, Nodes: 1, Detail: "lack 2 free GPUs", Holders: holders}
	}
	tests := []struct {
		name string
		a, b []Reason
		want bool
	}{
		{"none either side", []Reason{r("free_gpus")}, nil, true},
		{"same", []Reason{r("free_gpus", "x"), r("cpu")}, []Reason{r("free_gpus", "x")}, true},
		{"other job", []Reason{r("free_gpus", "x")}, []Reason{r("free_gpus", "y")}, false},
		{"named first time", nil, []Reason{r("free_gpus", "y")}, false},
	}
	for _, tt := range tests {
		if got := SameHolders(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: SameHolders = %v, want %v", tt.name, got, tt.want)
		}
	}
}
