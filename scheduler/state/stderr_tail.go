package state

import (
	"strings"
	"unicode/utf8"
)

// A failed allocation keeps the end of its task's stderr that its agent
// reported (api.Allocation.StderrTail), and the job's failure reason
// quotes its last lines. Both bounds are plain arithmetic on the entry,
// the same in every version, so a replayed log gives the same state.
const (
	// maxStderrTail bounds what an allocation keeps, whatever an agent
	// sends (agents send at most 2 KiB).
	maxStderrTail = 4 << 10
	// reasonTailLines and reasonTailBytes bound what the reason quotes.
	reasonTailLines = 3
	reasonTailBytes = 400
)

// boundTail keeps the last maxStderrTail bytes of s, starting at a rune.
func boundTail(s string) string {
	if len(s) <= maxStderrTail {
		return s
	}
	s = s[len(s)-maxStderrTail:]
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return s
}

// reasonTail is the end of a stderr tail on one line: its last non-blank
// lines, joined by " | ", at most reasonTailBytes bytes (cut at the
// front, where "..." marks the cut).
func reasonTail(tail string) string {
	var lines []string
	for _, l := range strings.Split(tail, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > reasonTailLines {
		lines = lines[len(lines)-reasonTailLines:]
	}
	s := strings.Join(lines, " | ")
	if len(s) > reasonTailBytes {
		s = s[len(s)-reasonTailBytes:]
		for len(s) > 0 && !utf8.RuneStart(s[0]) {
			s = s[1:]
		}
		s = "..." + s
	}
	return s
}
