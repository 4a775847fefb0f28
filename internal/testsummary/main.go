package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	allow := flag.String("allow", "", "allow-list of skips (PATTERN # why, one a line)")
	strict := flag.Bool("strict", os.Getenv("CI") == "true", "fail when a skip is not on the allow-list (default: CI=true)")
	module := flag.String("module", "github.com/ark-sched/ark", "module path cut from package names in the summary")
	flag.Parse()
	os.Exit(run(*allow, *strict, *module))
}

func run(allowFile string, strict bool, module string) int {
	start := time.Now()
	var rules []rule
	if allowFile != "" {
		f, err := os.Open(allowFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			return 2
		}
		rules, err = parseAllow(f, allowFile)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			return 2
		}
	}
	s := newSummary(os.Stdout)
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary: read go test -json:", err)
		return 2
	}
	c := s.report(rules, module, time.Since(start))
	code := 0
	if c.failed > 0 || c.pkgsFailed > 0 {
		code = 1
	}
	if c.disallowed > 0 {
		if strict {
			fmt.Printf("%d skips are not on the allow-list %s: make the test run here, or add a line that says why it cannot\n", c.disallowed, allowFile)
			code = 1
		} else {
			fmt.Printf("%d skips are not on the allow-list %s (CI fails on them)\n", c.disallowed, allowFile)
		}
	}
	if c.passed+c.failed+c.skipped == 0 {
		fmt.Println("no test ran")
		code = 1
	}
	fmt.Printf("tests: %d passed, %d failed, %d skipped\n", c.passed, c.failed, c.skipped)
	return code
}
