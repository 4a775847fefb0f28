package serve

import (
	"context"
	"testing"

	"github.com/ark-sched/ark/worker/train"
)

func TestRunLoad(t *testing.T) {
	m := testModel(t)
	store := &memStore{byURI: map[string]*train.AdapterWeights{
		"mem://a": testAdapter(t, m, train.LoRAConfig{Rank: 2}, 1), "mem://b": testAdapter(t, m, train.LoRAConfig{Rank: 4}, 2),
	}}
	url, s, start := testServerOf(t, m, Options{Adapters: []AdapterSpec{{Name: "a", URI: "mem://a"}, {Name: "b", URI: "mem://b"}}, AdapterSlots: 1, LoadAdapter: store.load})
	start()
	if err := s.WaitAdapters(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := RunLoad(context.Background(), LoadConfig{URL: url, Models: []string{"gpt-test", "a", "b"}, Concurrency: 4, Requests: 12, PromptBytes: 10, OutputTokens: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.OutputThroughput <= 0 || res.RequestThroughput <= 0 || res.TTFTMsP50 <= 0 || res.TTFTMsP99 < res.TTFTMsP50 || res.TPOTMsP50 <= 0 {
		t.Fatalf("load result %+v", res)
	}
	if st := s.Stats(); st.Completed != 12 || st.Tokens != 12*8 {
		t.Fatalf("server saw %+v", st)
	}
	// Poisson arrivals at 400/s: the same requests, spread out.
	res, err = RunLoad(context.Background(), LoadConfig{URL: url, Models: []string{"a", "b"}, Concurrency: 4, Rate: 400, Requests: 8, PromptBytes: 10, OutputTokens: 4, Seed: 2})
	if err != nil || res.Failed != 0 || res.OutputThroughput <= 0 {
		t.Fatalf("poisson load: %+v, %v", res, err)
	}
	// A model the server does not have fails every request, counted.
	res, err = RunLoad(context.Background(), LoadConfig{URL: url, Models: []string{"nope"}, Concurrency: 2, Requests: 3, OutputTokens: 4})
	if err != nil || res.Failed != 3 || res.FirstError == "" {
		t.Fatalf("unknown model: %+v, %v", res, err)
	}
}
