package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestReplicasZero: left out, replicas default to 1; an explicit 0 is an
// error naming the field for finetune, eval and batch jobs, and an
// inference service scaled to zero, which survives the CLI's trip to the
// server (the CLI sends the parsed spec as JSON).
func TestReplicasZero(t *testing.T) {
	without := strings.Replace(validYAML, "replicas: 2\n", "", 1)
	j, err := Parse([]byte(without))
	if err != nil || j.Replicas != 1 {
		t.Fatalf("replicas left out: %v, replicas=%v, want 1", err, j)
	}
	for _, kind := range []string{KindFinetune, KindEval, KindBatch} {
		in := strings.NewReplacer("replicas: 2", "replicas: 0", "kind: batch", "kind: "+kind).Replace(validYAML)
		_, err := Parse([]byte(in))
		want := "replicas: must be >= 1 for a " + kind + " job (0, scaled to zero, is for inference jobs only)"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s with replicas 0: %v, want %q", kind, err, want)
		}
	}
	in := strings.NewReplacer("replicas: 2", "replicas: 0", "kind: batch", "kind: inference").Replace(validYAML)
	j, err = Parse([]byte(in))
	if err != nil {
		t.Fatalf("inference with replicas 0: %v", err)
	}
	if j.Replicas != 0 {
		t.Fatalf("inference replicas = %d, want 0 (scaled to zero)", j.Replicas)
	}
	body, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(body)
	if err != nil || again.Replicas != 0 {
		t.Fatalf("after the trip as JSON: %v, replicas=%d, want 0", err, again.Replicas)
	}
}
