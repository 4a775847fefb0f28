package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestSystemDashboardInBrowser opens the dashboard (/ui/) of a real
// cluster (a server with tokens on and two agents of 4 fake GPUs) in a
// headless Chromium: it logs in through the token field, checks each
// page's content, watches the GPU map update live when a job starts, and
// saves screenshots of the cluster page and of a fine-tune's page.
// Screenshots go to $ARK_UI_SCREENSHOTS (relative to the repository root,
// e.g. bench/ui) when set, else to the test's artifact directory (kept
// with go test -artifacts, under -outputdir).
func TestSystemDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and a browser")
	}
	browser := chromium(t) // a skip here holds no turn of cpuHeavy's
	cpuHeavy(t)
	const mgmtTok, agentTok = "mgmt-ui-test-0123456789", "agent-ui-test-0123456789"
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(mgmtTok+" management\n"+agentTok+" agent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	queues := filepath.Join(t.TempDir(), "queues.yaml")
	if err := os.WriteFile(queues, []byte("- {name: research, quotaGPUs: 4, weight: 2, borrow: true}\n- {name: serving, quotaGPUs: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSrv(t)
	s.start(t, "--token-file", tokens, "--queues-file", queues)
	// Tokens by environment, each process its own: the test runs in
	// parallel with others, so it may not set its own (t.Setenv).
	startAgentsAs(t, []string{"ARK_TOKEN=" + agentTok}, s.http, "4xH200:141Gi", []string{"gpu-a", "gpu-b"}, "--stop-grace", "1s")
	mgmt := []string{"ARK_TOKEN=" + mgmtTok}

	data, _ := filepath.Abs("../../examples/data/shakespeare.txt")
	ft := submitSpecAs(t, mgmt, s.http, fmt.Sprintf(`name: ui-ft
kind: finetune
queue: research
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {model: gpt-test, data: %s, steps: 30, batch: 2}
`, data))
	share := func(name string) string {
		return submitSpecAs(t, mgmt, s.http, "name: "+name+"\nkind: batch\nqueue: serving\nresources: {gpuMilli: 500, gpuMemory: 20Gi, cpu: 100m, memory: 64Mi}\n"+
			"task: {driver: exec, exec: {command: [sh, -c, 'echo serving; sleep 300']}}\n")
	}
	half := share("ui-share")
	gang := submitSpecAs(t, mgmt, s.http, "name: ui-gang\nkind: batch\nqueue: research\nreplicas: 2\nresources: {gpus: 2, cpu: 100m, memory: 64Mi}\ntask: {driver: exec, exec: {command: [sh, -c, 'echo rank $RANK; sleep 300']}}\n")
	big := submitSpecAs(t, mgmt, s.http, "name: ui-big\nkind: batch\nqueue: research\nreplicas: 3\nresources: {gpus: 4, cpu: 100m, memory: 64Mi}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n")
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	c.Token = mgmtTok
	status := func(id string) string {
		j, _, err := c.Job(context.Background(), id, 0, 0)
		if err != nil {
			return err.Error()
		}
		return j.Status
	}
	waitUntil(t, 120*time.Second, "the fine-tune to succeed and the share to run", func() bool {
		return status(ft) == api.JobSucceeded && status(half) == api.JobRunning && status(gang) == api.JobRunning
	})

	b := openBrowser(t, browser)
	base := "http://" + s.http

	// Without a token the page says what it needs and shows nothing.
	b.do(chromedp.Navigate(base + "/ui/"))
	b.wait(`!document.getElementById("error").hidden && document.getElementById("error").textContent.includes("needs a token")`, "the token prompt")
	if n := b.eval(`document.querySelectorAll(".node").length`); n != "0" {
		t.Errorf("without a token the page shows %s nodes", n)
	}
	// The token field: kept in this tab's sessionStorage, sent as a header.
	b.do(chromedp.SendKeys(chromedp.ID("token"), mgmtTok), chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
	b.wait(`document.querySelectorAll(".gpumap .node").length == 2`, "the GPU map")
	if got := b.eval(`sessionStorage.getItem("ark-token")`); got != mgmtTok {
		t.Errorf("sessionStorage holds %q, want the token", got)
	}
	for _, check := range []struct{ expr, want string }{
		{`document.querySelectorAll(".gpumap .gpu").length`, "8"},
		{`document.querySelectorAll('.node[data-node="gpu-a"], .node[data-node="gpu-b"]').length`, "2"},
		{`document.querySelectorAll('a.gpu[href="/ui/jobs/` + half + `"]').length`, "1"},
		{`document.querySelector('a.gpu[href="/ui/jobs/` + half + `"] small').textContent`, "1/2"},
		{`document.querySelectorAll('a.gpu[href="/ui/jobs/` + gang + `"]').length`, "4"},
		{`document.querySelectorAll(".gpumap .gpu.free").length`, "3"},
		{`document.querySelectorAll(".legend .swatch").length`, "3"}, // research, serving, free
		{`document.getElementById("live").textContent`, "live"},
	} {
		if got := b.eval(check.expr); got != check.want {
			t.Errorf("cluster page: %s = %s, want %s", check.expr, got, check.want)
		}
	}
	b.screenshot("cluster.png")

	// Live: a job placed while the page is open shows up without a reload.
	b.eval(`window.arkMarker = 1`)
	live := submitSpecAs(t, mgmt, s.http, "name: ui-live\nkind: batch\nqueue: research\nresources: {gpus: 1, cpu: 100m, memory: 64Mi}\ntask: {driver: exec, exec: {command: [sleep, \"300\"]}}\n")
	b.wait(`document.querySelectorAll('a.gpu[href="/ui/jobs/`+live+`"]').length == 1`, "the new job on the GPU map")
	if b.eval(`window.arkMarker`) != "1" {
		t.Error("the page reloaded instead of updating in place")
	}

	pages := []struct{ path, ready string }{
		{"/ui/jobs", `document.querySelectorAll("tr.job").length == 5`},
		{"/ui/jobs?queue=serving", `document.querySelectorAll("tr.job").length == 1 && document.querySelector('tr.job[data-job="` + half + `"]') != null`},
		{"/ui/jobs?status=pending", `document.querySelectorAll("tr.job").length == 1 && document.querySelector('tr.job[data-job="` + big + `"]') != null`},
		{"/ui/jobs?status=succeeded", `document.querySelectorAll("tr.job").length == 1 && document.querySelector('tr.job[data-job="` + ft + `"]') != null`},
		{"/ui/queues", `document.querySelector('tr.queue[data-queue="serving"]') != null && document.querySelector('tr.pending a[href="/ui/jobs/` + big + `"]') != null`},
		{"/ui/nodes", `document.querySelectorAll("tr.node-row.ready").length == 2`},
		{"/ui/jobs/" + big, `document.getElementById("job-id") != null && document.body.textContent.includes("Not placed yet")`},
		{"/ui/jobs/" + half, `document.querySelector("tr.alloc") != null && document.querySelector("pre.log").textContent.includes("serving")`},
		{"/ui/jobs/" + gang, `document.querySelectorAll("tr.alloc").length == 2 && document.querySelector("pre.log").textContent.includes("rank 0")`},
		{"/ui/jobs/" + ft, `document.querySelector("figure.chart svg polyline.series") != null && document.querySelector("pre.log").textContent.includes("step 30/30 loss")` +
			` && document.querySelector('tr.event[data-type="placed"]') != null && document.querySelector('tr.event[data-type="submitted"]') != null`},
	}
	for _, p := range pages {
		b.do(chromedp.Navigate(base + p.path))
		b.wait(p.ready, p.path)
	}
	if n := b.eval(`document.querySelectorAll("figure.chart").length`); n != "2" {
		t.Errorf("the fine-tune's page draws %s charts, want loss and tokens/s", n)
	}
	b.screenshot("job.png")
	b.noErrors()

	// The policy holds, and the check above would see it refuse: an inline
	// style, injected through DevTools, is refused and reported.
	b.eval(`document.body.insertAdjacentHTML("beforeend", "<div style='color: red'>x</div>")`)
	waitUntil(t, 10*time.Second, "the CSP to refuse an inline style", func() bool { return b.reported("style-src") })
}

// chromium finds a Chromium to drive ($ARK_CHROMIUM, then the usual
// names), or skips the test saying how to get one.
func chromium(t *testing.T) string {
	if p := os.Getenv("ARK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (install Debian's chromium package, or set ARK_CHROMIUM to a Chrome binary)")
	return ""
}

// browserTab is one headless Chromium tab and what it logged.
type browserTab struct {
	t   *testing.T
	ctx context.Context
	dir string // where screenshots go

	mu     sync.Mutex
	errors []string // exceptions and Content-Security-Policy reports
}

func openBrowser(t *testing.T, path string) *browserTab {
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1400, 900)}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browserTab{t: t, ctx: ctx, dir: screenshotDir(t)}
	// The first Run starts the browser; Listen starts it too.
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return b
}

func (b *browserTab) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		b.errors = append(b.errors, "exception: "+ev.ExceptionDetails.Text+" "+ev.ExceptionDetails.URL)
	case *log.EventEntryAdded:
		if ev.Entry.Source == log.EntrySourceSecurity || strings.Contains(ev.Entry.Text, "Content Security Policy") {
			b.errors = append(b.errors, "security: "+ev.Entry.Text)
		}
	}
}

// reported says whether the browser reported an error naming what.
func (b *browserTab) reported(what string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		if strings.Contains(e, what) {
			return true
		}
	}
	return false
}

// noErrors fails the test if a script threw or the CSP refused anything.
func (b *browserTab) noErrors() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		b.t.Errorf("browser reported %s", e)
	}
}

func (b *browserTab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, testenv.Scale(30*time.Second))
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression through DevTools (which the
// page's CSP does not govern) and returns its value as text.
func (b *browserTab) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, testenv.Scale(10*time.Second))
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any]("String("+expr+")"))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// wait polls a predicate until it holds, and shows the page if it never does.
func (b *browserTab) wait(expr, what string) {
	b.t.Helper()
	deadline := time.Now().Add(testenv.Scale(30 * time.Second))
	for {
		ctx, cancel := context.WithTimeout(b.ctx, testenv.Scale(10*time.Second))
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		cancel()
		if err == nil && v {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s (%s; %v); the page shows:\n%s\nerror: %s", what, expr, err, b.eval("document.body.innerText"), b.eval(`document.getElementById("error").textContent`))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browserTab) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, testenv.Scale(30*time.Second))
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

func screenshotDir(t *testing.T) string {
	d := os.Getenv("ARK_UI_SCREENSHOTS")
	if d == "" {
		return t.ArtifactDir()
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join("..", "..", d) // from the repository root
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(d)
	return abs
}
