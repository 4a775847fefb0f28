package agent

import (
	"bytes"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/ark-sched/ark/scheduler/api"
)

// A failed task's report carries the end of its stderr, as Kubernetes'
// termination message does, so that the job's reason says why it failed
// ("ValueError: ...") and not only "exit code 2". The tail is bounded: at
// most TailLines lines and TailBytes bytes, from the end.
const (
	TailLines = 10
	TailBytes = 2 << 10
)

// withStderrTail adds the tail of the task's stderr (in dir) to the final
// report u of a task that failed on its own. A task stopped by the
// scheduler (stopReason set) failed because it was asked to: its stderr
// says nothing about why.
func withStderrTail(u api.AllocStatusUpdate, dir, stopReason string) api.AllocStatusUpdate {
	if u.Status != api.AllocFailed || stopReason != "" || dir == "" {
		return u
	}
	u.StderrTail = fileTail(logPath(dir, "stderr"), TailLines, TailBytes)
	return u
}

// fileTail is the last lines of the file at path, at most maxLines lines
// and maxBytes bytes, trimmed of blank lines at the end and of a partial
// UTF-8 rune at the start. It is empty when the file is missing or empty.
func fileTail(path string, maxLines, maxBytes int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	// Read a little more than maxBytes: the trailing newline and blank
	// lines are trimmed before the bound applies.
	off := max(fi.Size()-int64(maxBytes)-256, 0)
	buf, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return ""
	}
	return tailOf(buf, off > 0, maxLines, maxBytes)
}

// tailOf bounds buf (the end of a stream; cut says it does not start at
// the stream's start) to its last maxLines lines and maxBytes bytes.
func tailOf(buf []byte, cut bool, maxLines, maxBytes int) string {
	buf = bytes.TrimRight(buf, "\r\n\t ")
	if len(buf) > maxBytes {
		buf, cut = buf[len(buf)-maxBytes:], true
	}
	if cut {
		// Drop the first, partial line (unless it is all there is).
		if i := bytes.IndexByte(buf, '\n'); i >= 0 && i < len(buf)-1 {
			buf = buf[i+1:]
		}
		for len(buf) > 0 && !utf8.RuneStart(buf[0]) {
			buf = buf[1:]
		}
	}
	lines := strings.Split(string(buf), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, "\r")
	}
	return strings.ToValidUTF8(strings.Join(lines, "\n"), "\uFFFD")
}
