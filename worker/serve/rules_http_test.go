package serve

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/worker/train"
)

// shippedModel is examples/base/gpt-tiny: its greedy text is English-like,
// so rules can name words it says.
func shippedModel(t *testing.T) *train.Model {
	t.Helper()
	base, _ := filepath.Abs("../../examples/base/gpt-tiny")
	d := cpu.New(1)
	t.Cleanup(func() { d.Close() })
	m, _, err := train.LoadModel(context.Background(), d, "file://"+base, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func put(t *testing.T, url, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, string(buf[:n])
}

// TestRulesHTTP: rules replaced at run time act on prompts and on the
// generated text, streamed or whole, and a masked or blocked word never
// reaches the client whatever the tokens.
func TestRulesHTTP(t *testing.T) {
	url, srv, start := testServerOf(t, shippedModel(t), Options{})
	start()
	const req = `{"model":"gpt-test","prompt":"ROMEO:","max_tokens":40,"temperature":0}`
	_, _, out := post(t, url, "/v1/completions", req)
	plain := out["choices"].([]any)[0].(map[string]any)["text"].(string)
	word := regexp.MustCompile(`[a-z]{3,}`).FindString(plain)
	if word == "" {
		t.Fatalf("no word in the greedy text %q", plain)
	}

	// Bad rules are refused, naming the rule and the field.
	if code, body := put(t, url, "/v1/rules", `{"rules":[{"id":"x","stage":"output","regex":"a(","action":"mask"}]}`); code != 400 || !strings.Contains(body, "rules[0].regex") {
		t.Fatalf("bad regex: %d %s", code, body)
	}

	rules := fmt.Sprintf(`{"rules":[{"id":"mask-word","stage":"output","keywords":[%q],"action":"mask","mask":"***"},
	  {"id":"no-forbidden","stage":"input","keywords":["forbidden"],"action":"block","answer":"I will not talk about that."}]}`, word)
	if code, body := put(t, url, "/v1/rules", rules); code != 200 {
		t.Fatalf("put rules: %d %s", code, body)
	}
	want := regexp.MustCompile(`(?i)`+regexp.QuoteMeta(word)).ReplaceAllLiteralString(plain, "***")
	_, _, out = post(t, url, "/v1/completions", req)
	ch := out["choices"].([]any)[0].(map[string]any)
	if got := ch["text"].(string); got != want {
		t.Errorf("masked completion %q, want %q", got, want)
	}
	chunks := stream(t, url, "/v1/completions", strings.Replace(req, `"temperature":0`, `"temperature":0,"stream":true`, 1))
	if got := joinText(chunks, false); got != want {
		t.Errorf("masked stream %q, want %q", got, want)
	}
	for _, c := range chunks {
		if s := fmt.Sprint(c); strings.Contains(strings.ToLower(s), word) {
			t.Errorf("a chunk carries the masked word %q: %v", word, c)
		}
	}

	// An input block answers for the model, streamed or not.
	code, _, out := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"something Forbidden"}]}`)
	ch = out["choices"].([]any)[0].(map[string]any)
	if code != 200 || ch["finish_reason"] != "content_filter" || ch["message"].(map[string]any)["content"] != "I will not talk about that." {
		t.Errorf("input block: %d %v", code, out)
	}
	chunks = stream(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"forbidden"}]}`)
	if got := joinText(chunks, true); got != "I will not talk about that." {
		t.Errorf("streamed input block %q", got)
	}

	// An output block ends the answer with the rule's: whole, only the
	// rule's; streamed, what came before the word, then the rule's.
	rules = fmt.Sprintf(`{"rules":[{"id":"block-word","stage":"output","regex":%q,"action":"block","answer":"[withheld]"}]}`, "(?i)"+word)
	if code, body := put(t, url, "/v1/rules", rules); code != 200 {
		t.Fatalf("put rules: %d %s", code, body)
	}
	_, _, out = post(t, url, "/v1/completions", req)
	ch = out["choices"].([]any)[0].(map[string]any)
	if ch["text"] != "[withheld]" || ch["finish_reason"] != "content_filter" {
		t.Errorf("output block: %v", out)
	}
	chunks = stream(t, url, "/v1/completions", strings.Replace(req, `"temperature":0`, `"temperature":0,"stream":true`, 1))
	before := plain[:strings.Index(strings.ToLower(plain), word)]
	if got := joinText(chunks, false); got != before+"[withheld]" {
		t.Errorf("streamed output block %q, want %q", got, before+"[withheld]")
	}
	var doc rulesDoc
	getJSON(t, url+"/v1/rules", &doc)
	if doc.Hits["block-word"] != 2 || len(doc.Rules) != 1 {
		t.Errorf("GET /v1/rules: %+v", doc)
	}
	// The agent's figures count every action: the masks, and the input
	// and output blocks.
	if acts := srv.Metrics().Serve.RuleActions; acts["mask"] < 2 || acts["block"] < 4 || len(acts) != 2 {
		t.Errorf("rule actions %v, want mask >= 2 and block >= 4", acts)
	}
}
