package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string // build-output and build-fail events
	FailedBuild string // on a package's fail event: it did not build
}

// result is what one test ended with.
type result struct {
	pkg, test string
	action    string // pass, fail or skip
	reason    string // a skip's message
	output    []string
}

// pkgResult is what one package ended with.
type pkgResult struct {
	name        string
	action      string // pass, fail or skip ("no test files")
	elapsed     float64
	output      []string // lines printed outside any test (a panic, TestMain)
	failedBuild bool
}

// summary accumulates the events of one run.
type summary struct {
	out      io.Writer
	tests    map[string]*result // key: pkg + " " + test
	order    []*result
	pkgs     map[string]*pkgResult
	pkgOrder []*pkgResult
	build    map[string][]string // build output by import path, until it ends
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, tests: map[string]*result{}, pkgs: map[string]*pkgResult{}, build: map[string][]string{}}
}

// read consumes the event stream. Lines that are not JSON events (go vet's
// or the toolchain's own messages) are passed through as they are.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			fmt.Fprintln(s.out, string(line))
			continue
		}
		s.add(e)
	}
	return sc.Err()
}

func (s *summary) pkg(name string) *pkgResult {
	p := s.pkgs[name]
	if p == nil {
		p = &pkgResult{name: name}
		s.pkgs[name] = p
		s.pkgOrder = append(s.pkgOrder, p)
	}
	return p
}

func (s *summary) add(e event) {
	switch e.Action {
	case "build-output":
		s.build[e.ImportPath] = append(s.build[e.ImportPath], e.Output)
		return
	case "build-fail":
		// Compiler errors, printed as go test prints them: at once.
		for _, l := range s.build[e.ImportPath] {
			fmt.Fprint(s.out, l)
		}
		delete(s.build, e.ImportPath)
		return
	}
	if e.Package == "" {
		return
	}
	p := s.pkg(e.Package)
	if e.Test == "" {
		switch e.Action {
		case "output":
			p.output = append(p.output, e.Output)
		case "pass", "fail", "skip":
			p.action, p.elapsed, p.failedBuild = e.Action, e.Elapsed, e.FailedBuild != ""
			s.printPackage(p)
		}
		return
	}
	key := e.Package + " " + e.Test
	t := s.tests[key]
	if t == nil {
		t = &result{pkg: e.Package, test: e.Test}
		s.tests[key] = t
		s.order = append(s.order, t)
	}
	switch e.Action {
	case "output":
		t.output = append(t.output, e.Output)
	case "pass", "fail", "skip":
		t.action = e.Action
		if e.Action == "skip" {
			t.reason = skipReason(t.output)
		}
		if e.Action != "fail" {
			t.output = nil // only failures are printed; keep memory flat
		}
	}
}

// printPackage prints what plain `go test` prints when a package ends.
func (s *summary) printPackage(p *pkgResult) {
	switch p.action {
	case "pass":
		fmt.Fprintf(s.out, "ok  \t%s\t%.3fs\n", p.name, p.elapsed)
	case "skip":
		fmt.Fprintf(s.out, "?   \t%s\t[no test files]\n", p.name)
	case "fail":
		for _, t := range s.order {
			if t.pkg != p.name || t.action != "fail" {
				continue
			}
			for _, l := range t.output {
				// -json implies -v: drop the progress lines plain
				// go test would not have printed.
				if !strings.HasPrefix(l, "=== ") {
					fmt.Fprint(s.out, l)
				}
			}
		}
		// Output outside tests: a panic, a TestMain's message, a build error.
		for _, l := range p.output {
			if !strings.HasPrefix(l, "ok ") && !strings.HasPrefix(l, "FAIL\t") && l != "FAIL\n" && l != "PASS\n" {
				fmt.Fprint(s.out, l)
			}
		}
		if p.failedBuild {
			fmt.Fprintf(s.out, "FAIL\t%s [build failed]\n", p.name)
			return
		}
		fmt.Fprintf(s.out, "FAIL\t%s\t%.3fs\n", p.name, p.elapsed)
	}
}

// fileLine is the "name_test.go:42: " that t.Skip and t.Log put first.
var fileLine = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: `)

// skipReason is the message a skipped test gave, from its output.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		if loc := fileLine.FindStringIndex(l); loc != nil {
			msg = msg[:0] // the last logged line is the Skip's own
			t = strings.TrimSpace(l[loc[1]:])
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " ")
}

// rule is one line of the allow-list: a pattern and why it is allowed.
type rule struct {
	re  *regexp.Regexp
	why string
}

// parseAllow reads an allow-list: one rule a line, "PATTERN # why", where
// PATTERN is a regular expression matched against "PACKAGE TEST: REASON"
// (the package's import path without the module prefix). Blank lines and
// lines starting with # are comments.
func parseAllow(r io.Reader, name string) ([]rule, error) {
	var rules []rule
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pat, why, ok := strings.Cut(line, " # ")
		if !ok || strings.TrimSpace(why) == "" {
			return nil, fmt.Errorf("%s:%d: want \"PATTERN # why it is allowed\", got %q", name, n, line)
		}
		re, err := regexp.Compile(strings.TrimSpace(pat))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		rules = append(rules, rule{re: re, why: strings.TrimSpace(why)})
	}
	return rules, sc.Err()
}

// counts are the figures of the closing line.
type counts struct {
	pkgs, pkgsFailed, pkgsNoTests int
	passed, failed, skipped       int
	disallowed                    int
}

// report prints the summary and returns its figures. A skip is described
// as "PACKAGE TEST: REASON" with the module prefix cut from the package.
func (s *summary) report(rules []rule, module string, elapsed time.Duration) counts {
	var c counts
	for _, p := range s.pkgOrder {
		if p.action == "" {
			// The stream ended before the package did (go test killed):
			// count it failed, it never said otherwise.
			p.action = "fail"
			s.printPackage(p)
		}
		c.pkgs++
		switch p.action {
		case "fail":
			c.pkgsFailed++
		case "skip":
			c.pkgsNoTests++
		}
	}
	var failed, skipped []*result
	for _, t := range s.order {
		switch t.action {
		case "pass":
			c.passed++
		case "fail":
			c.failed++
			failed = append(failed, t)
		case "skip":
			c.skipped++
			skipped = append(skipped, t)
		case "":
			// Started, never ended: its package was killed (timeout, panic).
			c.failed++
			t.action = "fail"
			failed = append(failed, t)
		}
	}
	short := func(pkg string) string { return strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/") }
	fmt.Fprintf(s.out, "\n==> test summary (%s)\n", elapsed.Round(time.Second))
	fmt.Fprintf(s.out, "packages: %d (%d failed, %d without tests)\n", c.pkgs, c.pkgsFailed, c.pkgsNoTests)
	fmt.Fprintf(s.out, "tests run: %d (subtests included)\n", c.passed+c.failed+c.skipped)
	if len(failed) > 0 {
		fmt.Fprintf(s.out, "failed (%d):\n", len(failed))
		for _, t := range failed {
			fmt.Fprintf(s.out, "  %s %s\n", short(t.pkg), t.test)
		}
	}
	sort.SliceStable(skipped, func(i, j int) bool {
		if skipped[i].pkg != skipped[j].pkg {
			return skipped[i].pkg < skipped[j].pkg
		}
		return skipped[i].test < skipped[j].test
	})
	if len(skipped) > 0 {
		fmt.Fprintf(s.out, "skipped (%d):\n", len(skipped))
	}
	for _, t := range skipped {
		desc := fmt.Sprintf("%s %s: %s", short(t.pkg), t.test, t.reason)
		mark := "NOT ALLOWED"
		for _, r := range rules {
			if r.re.MatchString(desc) {
				mark = "allowed: " + r.why
				break
			}
		}
		if rules == nil {
			mark = ""
		} else if mark == "NOT ALLOWED" {
			c.disallowed++
		}
		if mark != "" {
			mark = "  [" + mark + "]"
		}
		fmt.Fprintf(s.out, "  %s%s\n", desc, mark)
	}
	return c
}
