package ui

import (
	"math"
	"strconv"
	"strings"
)

// A line chart drawn on the server as SVG: no script draws it, so it
// needs nothing the Content-Security-Policy would have to allow.

type chart struct {
	Title      string
	Points     string // the polyline's points, in the view box
	XMin, XMax string
	YMin, YMax string
	Last       string
	N          int
}

// The view box: the plot is inset to leave room for the axis labels.
const (
	chartW, chartH = 600.0, 200.0
	padL, padR     = 56.0, 8.0
	padT, padB     = 8.0, 24.0
	// chartPoints is how many points the polyline keeps at most.
	chartPoints = 400
)

func newChart(title string, pts []point) *chart {
	if len(pts) == 0 {
		return nil
	}
	pts = thin(pts, chartPoints)
	x0, x1 := pts[0].step, pts[len(pts)-1].step
	y0, y1 := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		y0, y1 = min(y0, p.v), max(y1, p.v)
		x0, x1 = min(x0, p.step), max(x1, p.step)
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y0, y1 = y0-0.5, y1+0.5
	}
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		x := padL + (p.step-x0)/(x1-x0)*(chartW-padL-padR)
		y := padT + (y1-p.v)/(y1-y0)*(chartH-padT-padB)
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	return &chart{Title: title, Points: b.String(), N: len(pts),
		XMin: num(pts[0].step), XMax: num(pts[len(pts)-1].step),
		YMin: num(y0), YMax: num(y1), Last: num(pts[len(pts)-1].v)}
}

// thin keeps at most n points, evenly spaced, always the first and last.
func thin(pts []point, n int) []point {
	if len(pts) <= n {
		return pts
	}
	out := make([]point, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, pts[i*(len(pts)-1)/(n-1)])
	}
	return out
}

// num writes an axis figure short enough for its margin: whole numbers
// from 1,000 up (tokens/s), four significant digits below (a loss).
func num(f float64) string {
	if math.Abs(f) >= 1000 {
		return strconv.FormatFloat(math.Round(f), 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}
