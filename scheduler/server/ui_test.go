package server

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUIShowsOnlyTheCallersNamespace: the dashboard's fragments pass the
// API's access check and filter as the API does. Tenant B (vision) sees
// node x's GPU as taken but never tenant A's (nlp) job, by any page or by
// the live stream; without a token there is nothing.
func TestUIShowsOnlyTheCallersNamespace(t *testing.T) {
	s := nodeACLServer(t)
	_, _, job, _ := twoNodes(t, s)
	for _, tc := range []struct {
		who, tok, path string
		stream         bool
		code           int
		want, notWant  []string
	}{
		{"tenant A", nlpTok, "/ui/data/cluster", false, 200, []string{`href="/ui/jobs/` + job + `"`, `data-node="x"`}, nil},
		{"tenant A", nlpTok, "/ui/data/jobs", false, 200, []string{`data-job="` + job + `"`}, nil},
		{"tenant A", nlpTok, "/ui/data/job?id=" + job, false, 200, []string{`<span id="job-id">` + job + `</span>`, `data-rank="0"`}, nil},
		{"tenant B", visionTok, "/ui/data/cluster", false, 200, []string{`data-node="x"`, "in use by a job you cannot see"}, []string{job}},
		{"tenant B", visionTok, "/ui/data/jobs", false, 200, []string{"0 of 0 jobs"}, []string{job}},
		{"tenant B", visionTok, "/ui/data/job?id=" + job, false, 404, nil, []string{"<h1>"}},
		{"tenant B", visionTok, "/ui/data/queues", false, 200, nil, []string{job}},
		{"tenant B", visionTok, "/ui/data/nodes", false, 200, []string{`data-node="x"`, `data-node="y"`}, []string{job}},
		{"tenant B", visionTok, "/ui/data/cluster", true, 200, []string{"event: page", `data-node="x"`}, []string{job}},
		{"tenant B", visionTok, "/ui/data/job?id=" + job, true, 200, []string{"event: failure", "no such job"}, []string{"<h1>"}},
		{"management", mgmtTok, "/ui/data/cluster", false, 200, []string{`href="/ui/jobs/` + job + `"`}, nil},
		{"no token", "", "/ui/data/cluster", false, 401, []string{"missing or unknown token"}, []string{job}},
		{"no token", "", "/ui/data/jobs", true, 401, nil, []string{job}},
	} {
		req, err := http.NewRequest("GET", "http://"+s.HTTPAddr()+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.tok != "" {
			req.Header.Set("Authorization", "Bearer "+tc.tok)
		}
		if tc.stream {
			req.Header.Set("Accept", "text/event-stream")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := firstEvent(t, resp.Body, tc.stream && resp.StatusCode == 200)
		resp.Body.Close()
		name := tc.who + " " + tc.path
		if tc.stream {
			name += " (stream)"
		}
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d\n%s", name, resp.StatusCode, tc.code, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: lacks %q\n%s", name, w, body)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(body, w) {
				t.Errorf("%s: shows %q\n%s", name, w, body)
			}
		}
	}
}

// firstEvent reads a stream's first event, or a whole answer.
func firstEvent(t *testing.T, r io.Reader, stream bool) string {
	t.Helper()
	if !stream {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var b strings.Builder
	for sc.Scan() && sc.Text() != "" {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}
