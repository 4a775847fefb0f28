package ui

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
)

// drawCells writes a node's GPU cells by hand. With 1,000 nodes of 8 GPUs
// the cells are most of the cluster page, and html/template's reflection
// took most of its render time (BenchmarkClusterPage); every value written
// here is escaped for its place (text, attribute, URL path), which is
// what html/template would have done.
func drawCells(cells []gpuCell) template.HTML {
	var b strings.Builder
	b.Grow(len(cells) * 160)
	for _, c := range cells {
		tag := "span"
		if c.JobID != "" {
			tag = "a"
		}
		b.WriteString("<" + tag + ` class="gpu ` + c.Class + `"`) // classes are ours: free, other, c0..c9
		if c.JobID != "" {
			b.WriteString(` href="/ui/jobs/`)
			b.WriteString(template.HTMLEscapeString(url.PathEscape(c.JobID)))
			b.WriteByte('"')
		}
		b.WriteString(` title="`)
		b.WriteString(template.HTMLEscapeString(c.Title))
		b.WriteString(`">`)
		b.WriteString(strconv.Itoa(c.Index))
		if c.Share != "" {
			b.WriteString("<small>")
			b.WriteString(template.HTMLEscapeString(c.Share))
			b.WriteString("</small>")
		}
		b.WriteString("</" + tag + ">")
	}
	return template.HTML(b.String())
}
