// Package metricsdoc reads the metric list of docs/metrics.md and checks a
// scrape against it, so that the documentation cannot drift from what the
// servers and agents export: every ark_ family scraped must be documented
// with its type and labels, and every documented family must be scraped.
package metricsdoc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric is one documented family.
type Metric struct {
	Name    string
	Type    string   // counter, gauge, histogram
	Labels  []string // sorted
	Meaning string
	// Component is the section that lists it: "server", "agent" or
	// "task" (the figures tasks report, exported by their agent).
	Component string
}

// Prefix is what every documented family's name starts with; families
// without it (go_, process_, promhttp_) are the client library's own.
const Prefix = "ark_"

// Path is docs/metrics.md of this repository.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "docs", "metrics.md")
}

// Load reads the documented families from a metrics.md.
func Load(path string) (map[string]Metric, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads tables of the form
//
//	## Server
//	| Name | Type | Labels | Meaning |
//	| --- | --- | --- | --- |
//	| `ark_jobs` | gauge | `queue`, `status` | ... |
//
// A section's heading names its component (its first word, lower case).
func Parse(r io.Reader, name string) (map[string]Metric, error) {
	out := map[string]Metric{}
	component := ""
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if h, ok := strings.CutPrefix(text, "## "); ok {
			component = strings.ToLower(strings.Fields(h)[0])
			continue
		}
		if !strings.HasPrefix(text, "| `"+Prefix) {
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		if len(cells) != 4 {
			return nil, fmt.Errorf("%s:%d: want 4 cells (name, type, labels, meaning), got %d", name, line, len(cells))
		}
		m := Metric{
			Name:      strings.Trim(strings.TrimSpace(cells[0]), "`"),
			Type:      strings.TrimSpace(cells[1]),
			Meaning:   strings.TrimSpace(cells[3]),
			Component: component,
		}
		switch m.Type {
		case "counter", "gauge", "histogram":
		default:
			return nil, fmt.Errorf("%s:%d: %s: type %q is not counter, gauge or histogram", name, line, m.Name, m.Type)
		}
		if l := strings.TrimSpace(cells[2]); l != "" && l != "-" {
			for _, lab := range strings.Split(l, ",") {
				m.Labels = append(m.Labels, strings.Trim(strings.TrimSpace(lab), "`"))
			}
		}
		slices.Sort(m.Labels)
		if component == "" {
			return nil, fmt.Errorf("%s:%d: %s is listed before any ## section", name, line, m.Name)
		}
		if m.Meaning == "" {
			return nil, fmt.Errorf("%s:%d: %s has no meaning", name, line, m.Name)
		}
		if _, dup := out[m.Name]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", name, line, m.Name)
		}
		out[m.Name] = m
	}
	return out, sc.Err()
}

// Decode parses a scrape in the Prometheus text format.
func Decode(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Check compares the ark_ families of a scrape with those the document
// lists for component, and returns every difference (none: nil).
func Check(docs map[string]Metric, component string, got map[string]*dto.MetricFamily) []string {
	var errs []string
	for name, fam := range got {
		if !strings.HasPrefix(name, Prefix) {
			continue
		}
		d, ok := docs[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s is exported but not documented in docs/metrics.md", name))
			continue
		}
		if d.Component != component {
			errs = append(errs, fmt.Sprintf("%s is exported by the %s but documented under %s", name, component, d.Component))
		}
		if typ := strings.ToLower(fam.GetType().String()); typ != d.Type {
			errs = append(errs, fmt.Sprintf("%s is a %s, documented as a %s", name, typ, d.Type))
		}
		for _, m := range fam.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName())
			}
			slices.Sort(labels)
			if !slices.Equal(labels, d.Labels) {
				errs = append(errs, fmt.Sprintf("%s has labels %v, documented %v", name, labels, d.Labels))
				break
			}
		}
	}
	for name, d := range docs {
		if d.Component == component && got[name] == nil {
			errs = append(errs, fmt.Sprintf("%s is documented for the %s but not exported", name, component))
		}
	}
	slices.Sort(errs)
	return errs
}
