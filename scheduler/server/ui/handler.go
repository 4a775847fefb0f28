package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ErrNoJob is the answer for a job that does not exist or that the caller
// may not see: the two look the same, as they do in the API.
var ErrNoJob = errors.New("no such job")

// UI serves the dashboard.
type UI struct {
	src    Source
	pages  *template.Template
	static http.Handler
}

// New returns the dashboard over src.
func New(src Source) *UI {
	funcs := template.FuncMap{
		"ago":        ago,
		"queueClass": queueClass,
		"share":      fraction,
		"cpus":       func(m int64) string { return decimal(float64(m) / 1000) },
	}
	sub, _ := fs.Sub(staticFS, "static") // a constant path: cannot fail
	return &UI{
		src:    src,
		pages:  template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")),
		static: http.StripPrefix("/ui/static/", http.FileServerFS(sub)),
	}
}

// csp allows nothing but this origin's own files: no inline script or
// style (the templates have none: colours are classes, charts SVG
// attributes), no framing, no plugins, forms posting nowhere else.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// shellPage says which fragment a path under /ui/ shows.
type shellPage struct {
	Title, Page, ID, Query string
	Nav                    []navLink
}

type navLink struct {
	Name, Href string
	Current    bool
}

// route maps a path under /ui/ to its page, and the job ID of a job page.
func route(path string) (page, id string, ok bool) {
	rest := strings.TrimPrefix(path, "/ui/")
	switch {
	case rest == "" || rest == "cluster":
		return "cluster", "", true
	case rest == "queues" || rest == "jobs" || rest == "nodes":
		return rest, "", true
	case strings.HasPrefix(rest, "jobs/"):
		id := strings.TrimPrefix(rest, "jobs/")
		return "job", id, id != "" && !strings.Contains(id, "/")
	}
	return "", "", false
}

// Shell serves GET /ui/...: the page shells, which hold no data and so
// need no token, and the static assets.
func (u *UI) Shell(w http.ResponseWriter, r *http.Request) {
	secure(w)
	if strings.HasPrefix(r.URL.Path, "/ui/static/") {
		w.Header().Set("Cache-Control", "no-cache")
		u.static.ServeHTTP(w, r)
		return
	}
	page, id, ok := route(r.URL.Path)
	if !ok {
		http.Error(w, fmt.Sprintf("no dashboard page %s: try /ui/, /ui/queues, /ui/jobs, /ui/jobs/ID or /ui/nodes", r.URL.Path), http.StatusNotFound)
		return
	}
	sp := shellPage{Title: page, Page: page, ID: id, Query: r.URL.RawQuery}
	if id != "" {
		sp.Title = id
	}
	for _, n := range []navLink{{Name: "cluster", Href: "/ui/"}, {Name: "queues", Href: "/ui/queues"}, {Name: "jobs", Href: "/ui/jobs"}, {Name: "nodes", Href: "/ui/nodes"}} {
		n.Current = n.Name == page || (page == "job" && n.Name == "jobs")
		sp.Nav = append(sp.Nav, n)
	}
	var b bytes.Buffer
	if err := u.pages.ExecuteTemplate(&b, "shell.html", sp); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// Data serves GET /ui/data/{page}: the page's HTML fragment for the
// caller, or with Accept: text/event-stream a stream of them, one each
// time the state changes. The server checks the caller's token first.
func (u *UI) Data(w http.ResponseWriter, r *http.Request) {
	secure(w)
	w.Header().Set("Cache-Control", "no-store")
	page := strings.TrimPrefix(r.URL.Path, "/ui/data/")
	if !knownPage(page) {
		http.Error(w, fmt.Sprintf("no dashboard page %q: want cluster, queues, jobs, job or nodes", page), http.StatusNotFound)
		return
	}
	if page == "job" && r.URL.Query().Get("id") == "" {
		http.Error(w, "query parameter id: the job page needs a job ID", http.StatusBadRequest)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		u.stream(w, r, page)
		return
	}
	v, err := u.src.View(r.Context(), 0)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	body, err := u.render(r.Context(), page, v, r.URL.Query())
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNoJob) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set(api.IndexHeader, fmt.Sprint(v.Index))
	_, _ = w.Write(body)
}

func knownPage(p string) bool {
	switch p {
	case "cluster", "queues", "jobs", "job", "nodes":
		return true
	}
	return false
}

// render draws one page's fragment from v.
func (u *UI) render(ctx context.Context, page string, v *View, q url.Values) ([]byte, error) {
	var data any
	switch page {
	case "cluster":
		data = buildCluster(v)
	case "queues":
		data = buildQueues(v)
	case "jobs":
		data = buildJobs(v, filterOf(q))
	case "nodes":
		data = buildNodes(v)
	case "job":
		id := q.Get("id")
		var j *api.Job
		for _, c := range v.Jobs {
			if c.ID == id {
				j = c
			}
		}
		if j == nil {
			return nil, fmt.Errorf("job %q: %w", id, ErrNoJob)
		}
		data = buildJob(ctx, u.src, j)
	}
	var b bytes.Buffer
	if err := u.pages.ExecuteTemplate(&b, page, data); err != nil {
		return nil, fmt.Errorf("render page %s: %w", page, err)
	}
	return b.Bytes(), nil
}

// ago says how long ago t was, to the unit a person cares about.
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return t.Format("2006-01-02 15:04")
}
