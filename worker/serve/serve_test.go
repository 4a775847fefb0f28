package serve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/worker/train"
)

func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	cfg, err := train.Preset("gpt-test")
	if err != nil {
		t.Fatal(err)
	}
	d := cpu.New(1)
	t.Cleanup(func() { d.Close() })
	m, err := train.NewModel(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(1); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(m, "gpt-test", "file:///ckpt", 7, "alloc-1").Handler())
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+"/v1/generate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestGenerate(t *testing.T) {
	srv := testServer(t)
	code, out := post(t, srv.URL, `{"prompt":"ab","tokens":12,"temperature":0.5,"seed":3}`)
	if code != 200 || out["tokens"].(float64) != 12 || out["step"].(float64) != 7 || out["replica"] != "alloc-1" {
		t.Fatalf("%d %v", code, out)
	}
	// The same seed gives the same text.
	_, again := post(t, srv.URL, `{"prompt":"ab","tokens":12,"temperature":0.5,"seed":3}`)
	if again["text"] != out["text"] {
		t.Errorf("same request, different text: %q vs %q", out["text"], again["text"])
	}
	resp, err := http.Get(srv.URL + "/v1/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
}

func TestGenerateBadInput(t *testing.T) {
	srv := testServer(t)
	for body, want := range map[string]int{
		`{"prompt":"a","tokens":-1}`:      400,
		`{"prompt":"a","tokens":100000}`:  400,
		`{"prompt":"a","temperature":-1}`: 400,
		`{"prompt":"a","bogus":1}`:        400,
		`not json`:                        400,
		`{"prompt":"` + strings.Repeat("x", MaxPromptBytes+1) + `"}`: 413,
	} {
		if code, out := post(t, srv.URL, body); code != want || out["error"] == nil {
			t.Errorf("%.40s: %d %v, want %d with an error", body, code, out, want)
		}
	}
}
