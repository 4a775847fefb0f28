package ui

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newTestUI() *UI {
	return New(fixedSource{v: testView(), logs: map[string]string{"ft-abc": trainerLog}})
}

func TestShell(t *testing.T) {
	u := newTestUI()
	for _, tc := range []struct {
		path string
		code int
		want []string
	}{
		{"/ui/", 200, []string{`data-page="cluster"`, `href="/ui/static/app.css"`, `id="token"`}},
		{"/ui/queues", 200, []string{`data-page="queues"`}},
		{"/ui/jobs?status=running&queue=research", 200, []string{`data-page="jobs"`, `data-query="status=running&amp;queue=research"`}},
		{"/ui/jobs/ft-abc", 200, []string{`data-page="job"`, `data-id="ft-abc"`, `<title>Ark · ft-abc</title>`}},
		{"/ui/nodes", 200, []string{`data-page="nodes"`}},
		{"/ui/static/app.js", 200, []string{"sessionStorage", "text/event-stream"}},
		{"/ui/static/app.css", 200, []string{".gpumap"}},
		{"/ui/nope", 404, []string{"no dashboard page /ui/nope"}},
		{"/ui/jobs/a/b", 404, nil},
		{"/ui/static/missing.js", 404, nil},
	} {
		rec := httptest.NewRecorder()
		u.Shell(rec, httptest.NewRequest("GET", tc.path, nil))
		checkAnswer(t, tc.path, rec, tc.code, tc.want, nil)
	}
}

func TestData(t *testing.T) {
	u := newTestUI()
	for _, tc := range []struct {
		path    string
		code    int
		want    []string
		notWant []string
	}{
		{"/ui/data/cluster", 200,
			[]string{`data-node="node-a"`, `data-node="node-b"`, `class="node down"`, `<span class="tag">down</span>`, `<span class="tag">draining</span>`,
				`class="gpu ` + queueClass("research") + `" href="/ui/jobs/ft-abc"`, "<small>1/2</small>", `class="gpu other"`, `class="gpu free"`,
				"20 GPUs · 5.5 in use", "in use by a job you cannot see"},
			[]string{"style="}},
		{"/ui/data/queues", 200,
			[]string{`data-queue="research"`, `data-queue="serving"`, `href="/ui/jobs/big-q1"`, "lack 16 free GPUs in one NVLink domain", "<td>2</td>"},
			nil},
		{"/ui/data/jobs", 200, []string{`data-job="ft-abc"`, `data-job="big-q1"`, `data-job="old-1"`, "4 of 4 jobs"}, nil},
		{"/ui/data/jobs?status=running", 200, []string{`data-job="ft-abc"`, `data-job="chat-xyz"`, "<option selected>running</option>"}, []string{`data-job="big-q1"`}},
		{"/ui/data/jobs?namespace=vision", 200, []string{`data-job="old-1"`, "1 of 4 jobs"}, []string{`data-job="ft-abc"`}},
		{"/ui/data/jobs?queue=research&status=pending", 200, []string{`data-job="big-q1"`}, []string{`data-job="ft-abc"`}},
		{"/ui/data/job?id=ft-abc", 200,
			[]string{`<span id="job-id">ft-abc</span>`, `data-rank="0"`, `data-rank="1"`, "<dt>Restarts</dt><dd>1</dd>", "<polyline class=\"series\" points=\"56.0,8.0 ",
				"loss: last 1.9 (4 points)", "tokens/s per rank: last 1300", "saved checkpoint step 30", "step 30/30 loss 1.9000",
				// Events newest first, their text escaped.
				`<tr class="event" data-type="restarting"><td title=`, "50m ago</td><td>restarting</td><td>restarting (1 of 3) after rank 1 failed on node node-a: &lt;exit 1&gt;</td></tr><tr class=\"event\" data-type=\"submitted\">"},
			[]string{"Log unavailable", "<exit 1>"}},
		{"/ui/data/job?id=chat-xyz", 200,
			[]string{"<code>/v1/services/chat-xyz/</code>", "health check failed", "(1/2)", "Log unavailable: node a of rank 0 serves no logs",
				"<dd>3 (stable 2)</dd>", "version 3 running (canaries wait for <code>ark job promote</code>): 1 canary replica(s) of version 3 healthy",
				"from 1 to 2 replicas: queue depth 9.0 per replica against the target 4 for 15s"},
			[]string{"<polyline"}},
		{"/ui/data/job?id=big-q1", 200, []string{"Why it waits", "Not placed yet."}, []string{"<h2>Events</h2>"}},
		{"/ui/data/job?id=no-such", 404, []string{`job "no-such": no such job`}, nil},
		{"/ui/data/job", 400, []string{"needs a job ID"}, nil},
		{"/ui/data/nodes", 200, []string{`data-node="node-c"`, "8 x H200 (141 GiB)", `<span class="status down">down</span>`, "missed heartbeats", "<td>64</td>"}, nil},
		{"/ui/data/secrets", 404, []string{"no dashboard page"}, nil},
	} {
		rec := httptest.NewRecorder()
		u.Data(rec, httptest.NewRequest("GET", tc.path, nil))
		checkAnswer(t, tc.path, rec, tc.code, tc.want, tc.notWant)
		if tc.code == 200 && rec.Header().Get("X-Ark-Index") != "42" {
			t.Errorf("%s: X-Ark-Index %q, want 42", tc.path, rec.Header().Get("X-Ark-Index"))
		}
	}
}

// checkAnswer checks an answer's code, body and security headers.
func checkAnswer(t *testing.T, path string, rec *httptest.ResponseRecorder, code int, want, notWant []string) {
	t.Helper()
	body := rec.Body.String()
	if rec.Code != code {
		t.Errorf("%s: %d, want %d\n%s", path, rec.Code, code, body)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s: body lacks %q\n%s", path, w, body)
		}
	}
	for _, w := range notWant {
		if strings.Contains(body, w) {
			t.Errorf("%s: body holds %q", path, w)
		}
	}
	h := rec.Header()
	if got := h.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") || !strings.Contains(got, "frame-ancestors 'none'") || strings.Contains(got, "unsafe-inline") {
		t.Errorf("%s: Content-Security-Policy %q", path, got)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", path, h.Get("X-Content-Type-Options"))
	}
}

// TestStream: the stream sends the page at once, then keep-alives while
// the state does not move; a failing page ends it with a failure event.
func TestStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(newTestUI().Data))
	defer srv.Close()
	for _, tc := range []struct {
		path  string
		event string
		want  string
	}{
		{"/ui/data/cluster", "event: page", `data: <div class="node down" data-node="node-b">`},
		{"/ui/data/jobs?status=pending", "event: page", `data: <td><a href="/ui/jobs/big-q1">big-q1</a></td>`},
		{"/ui/data/job?id=no-such", "event: failure", `data: job "no-such": no such job`},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+tc.path, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("%s: Content-Type %q", tc.path, ct)
		}
		// Read the first event: its name, its id and its data lines.
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var lines []string
		for sc.Scan() && sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
		cancel()
		resp.Body.Close()
		got := strings.Join(lines, "\n")
		if len(lines) < 3 || lines[0] != tc.event || !strings.HasPrefix(lines[1], "id: ") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: first event\n%s\nwant %s with %q", tc.path, got, tc.event, tc.want)
		}
	}
}
