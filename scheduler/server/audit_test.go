package server

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ark-sched/ark/internal/audit"
)

// Every write and operator call is in the audit log twice (as it starts
// and with its outcome), refused ones too, with the token's fingerprint and
// never the token; reads are not; the chain verifies.
func TestAuditLog(t *testing.T) {
	s := limitServer(t, DefaultLimits)
	ctx := context.Background()
	nlp := as(t, s, nlpTok)
	nlpSpec := []byte(strings.Replace(gangSpec, `"name":"gang"`, `"name":"gang","namespace":"nlp"`, 1))
	sub, err := nlp.SubmitJob(ctx, nlpSpec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nlp.Jobs(ctx, ""); err != nil { // a read: not audited
		t.Fatal(err)
	}
	if _, err := nlp.SubmitJob(ctx, []byte(gangSpec)); code(err) != 403 { // another namespace
		t.Fatalf("submit to default as nlp: %v", err)
	}
	if _, err := as(t, s, "").SubmitJob(ctx, nlpSpec); code(err) != 401 {
		t.Fatalf("submit without a token: %v", err)
	}
	if _, err := as(t, s, mgmtTok).RaftPeers(ctx); err != nil { // an operator read: audited
		t.Fatal(err)
	}
	if err := nlp.CancelJob(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}

	n, err := audit.VerifyFile(s.cfg.AuditPath)
	if err != nil {
		t.Fatalf("the audit log does not verify: %v", err)
	}
	data, err := os.ReadFile(s.cfg.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{nlpTok, mgmtTok, agentTok} {
		if strings.Contains(string(data), tok) {
			t.Errorf("a token is in the audit log")
		}
	}
	type row struct{ route, target, ns, outcome, accessor string }
	var got []row
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Phase == audit.PhaseResponse {
			got = append(got, row{e.Route, e.Target, e.Namespace, e.Outcome, e.Accessor})
		}
	}
	fp := TokenFingerprint(nlpTok)
	want := []row{
		{"POST /v1/jobs", "", "nlp", audit.OutcomeOK, fp},
		{"POST /v1/jobs", "", "nlp", audit.OutcomeDenied, fp},
		{"POST /v1/jobs", "", "", audit.OutcomeDenied, ""},
		{"GET /v1/operator/raft/peers", "", "", audit.OutcomeOK, TokenFingerprint(mgmtTok)},
		{"DELETE /v1/jobs/{id}", sub.ID, "nlp", audit.OutcomeOK, fp},
	}
	if n != 2*len(want) || len(got) != len(want) {
		t.Fatalf("%d entries, %d answers %+v; want %d answers %+v", n, len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("answer %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
