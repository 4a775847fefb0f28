package serve

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ark-sched/ark/worker/train"
)

// TestSetAdapters: a new version of the spec's adapter list is applied in
// place. SetAdapters returns while a new adapter's fetch still hangs, and
// the base and the other adapters answer meanwhile; adapters gone from the
// list are unregistered, one whose checkpoint moved is fetched from the
// new one, pinning follows the list, an adapter added at run time
// through POST /v1/adapters stays, and a bad name is refused without
// holding up the rest.
func TestSetAdapters(t *testing.T) {
	m := testModel(t)
	gate := make(chan struct{})
	store := &memStore{
		byURI: map[string]*train.AdapterWeights{
			"mem://a": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 1), "mem://a2": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 2),
			"mem://slow": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 3), "mem://c": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 4),
			"mem://rt": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 5),
		},
		gate: map[string]chan struct{}{"mem://slow": gate},
	}
	url, s, start := testServerOf(t, m, Options{Adapters: []AdapterSpec{{Name: "a", URI: "mem://a"}}, LoadAdapter: store.load})
	start()
	if code, _, out := post(t, url, "/v1/adapters", `{"name":"rt","uri":"mem://rt"}`); code != 200 {
		t.Fatalf("run-time add: %d %v", code, out)
	}
	state := func() map[string]AdapterInfo {
		out := map[string]AdapterInfo{}
		for _, a := range s.Adapters() {
			out[a.Name] = a
		}
		return out
	}
	ask := func(model string) int {
		t.Helper()
		code, _, _ := post(t, url, "/v1/completions", completionBody(model, "the cat", 3))
		return code
	}

	// Version 2: slow (its fetch hangs) and c, pinned, join a.
	if err := s.SetAdapters([]AdapterSpec{{Name: "a", URI: "mem://a"}, {Name: "slow", URI: "mem://slow"}, {Name: "c", URI: "mem://c", Pinned: true}}); err != nil {
		t.Fatal(err)
	}
	if st := state(); st["slow"].Tier != TierLoading {
		t.Fatalf("slow after SetAdapters: %+v, want loading (SetAdapters does not wait)", st["slow"])
	}
	for _, model := range []string{"gpt-test", "a", "c", "rt"} {
		if code := ask(model); code != 200 {
			t.Fatalf("%s while slow loads: %d", model, code)
		}
	}
	if !state()["c"].Pinned {
		t.Errorf("c: %+v, want pinned", state()["c"])
	}
	close(gate)
	if code := ask("slow"); code != 200 {
		t.Fatalf("slow after its fetch: %d", code)
	}

	// Version 3: c is gone, a moved to a2, slow is unpinned-kept, rt
	// (never in the spec) stays.
	fetches := store.fetches.Load()
	if err := s.SetAdapters([]AdapterSpec{{Name: "slow", URI: "mem://slow"}, {Name: "a", URI: "mem://a2"}}); err != nil {
		t.Fatal(err)
	}
	if code := ask("c"); code != http.StatusNotFound {
		t.Errorf("c after its removal: %d, want 404", code)
	}
	if code := ask("a"); code != 200 {
		t.Errorf("a after its move: %d", code)
	}
	st := state()
	if got := keys(st); got != "a,rt,slow" || st["a"].URI != "mem://a2" {
		t.Errorf("adapters %v (a at %s), want a (mem://a2), rt, slow", got, st["a"].URI)
	}
	if n := store.fetches.Load() - fetches; n != 1 {
		t.Errorf("%d fetches for version 3, want 1 (a2 alone; slow stays)", n)
	}

	// Version 4: the base's name is refused, the rest still applies.
	err := s.SetAdapters([]AdapterSpec{{Name: "gpt-test", URI: "mem://a"}, {Name: "rt", URI: "mem://c"}})
	if !errors.Is(err, ErrAdapterConflict) {
		t.Errorf("the base's name: %v, want ErrAdapterConflict", err)
	}
	if err := s.WaitAdapters(context.Background()); err != nil {
		t.Fatal(err)
	}
	// rt, named by the spec now, is the spec's; a and slow are gone.
	if st := state(); keys(st) != "rt" || st["rt"].URI != "mem://c" {
		t.Errorf("adapters %+v, want rt alone at mem://c", st)
	}
	// Version 5: none.
	if err := s.SetAdapters(nil); err != nil || len(s.Adapters()) != 0 {
		t.Errorf("no adapters: %v %+v", err, s.Adapters())
	}
}

func keys(m map[string]AdapterInfo) string { return strings.Join(slices.Sorted(maps.Keys(m)), ",") }
