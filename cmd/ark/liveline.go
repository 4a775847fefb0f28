package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The live line: the one status line a long operation keeps up to date on
// stderr (ark job submit --wait, ark ckpt verify, ark model import's
// upload, the benchmarks). On a terminal it is redrawn in place, at most
// ten times a second, cut to the terminal's width so that it never wraps.
// Off a terminal a progress bar draws nothing, while a line of discrete
// changes (a job's status, a benchmark's steps) prints each change on a
// line of its own, so that logs keep them; with -o json (quiet) it draws
// nothing at all. There is one of it: every such command uses this type.

// liveMode is how a live line draws.
type liveMode int

const (
	liveOff    liveMode = iota // nothing (-o json; a bar off a terminal)
	liveLog                    // each change on a line of its own (off a terminal)
	liveRedraw                 // redrawn in place (a terminal)
)

// liveModeFor picks the mode for w: quiet is -o json; logOffTTY says
// whether the line's changes are worth a line each off a terminal.
func liveModeFor(w io.Writer, quiet, logOffTTY bool) liveMode {
	switch {
	case quiet:
		return liveOff
	case isTerminal(w):
		return liveRedraw
	case logOffTTY:
		return liveLog
	}
	return liveOff
}

// liveLine draws a live line on w; it is safe for concurrent use (a
// benchmark's log may come from several goroutines).
type liveLine struct {
	mu    sync.Mutex
	w     io.Writer
	mode  liveMode
	start time.Time
	width int // of the terminal, in columns
	last  time.Time
	prev  string
	drawn bool
}

// liveInterval is how often a terminal's line is redrawn at most.
const liveInterval = 100 * time.Millisecond

func newLiveLine(w io.Writer, quiet, logOffTTY bool) *liveLine {
	l := &liveLine{w: w, mode: liveModeFor(w, quiet, logOffTTY), start: time.Now()}
	if l.mode == liveRedraw {
		l.width = terminalWidth(w)
	}
	return l
}

// show sets the line's text, prefixed with the time since the line
// began ("[  5.1s] ..."). A terminal is redrawn at most every
// liveInterval unless final; a log takes each new text once.
func (l *liveLine) show(text string, final bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.mode {
	case liveOff:
	case liveLog:
		if text != l.prev {
			fmt.Fprintln(l.w, elapsedText(time.Since(l.start), text))
		}
	case liveRedraw:
		now := time.Now()
		if text == l.prev || (!final && now.Sub(l.last) < liveInterval) {
			return
		}
		l.last, l.drawn = now, true
		fmt.Fprint(l.w, redrawText(elapsedText(now.Sub(l.start), text), l.width))
	}
	l.prev = text
}

// bar shows a progress bar: label, done of total bytes.
func (l *liveLine) bar(label string, done, total int64) {
	l.show(barText(label, done, total), done >= total)
}

// end finishes the line on a terminal: keep leaves its last text (a
// status worth reading), otherwise it is erased (a finished bar).
func (l *liveLine) end(keep bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mode != liveRedraw || !l.drawn {
		return
	}
	if keep {
		fmt.Fprintln(l.w)
	} else {
		fmt.Fprint(l.w, "\r\033[K")
	}
	l.drawn = false
}

// Writer returns an io.Writer whose every complete line becomes the live
// line's text (a benchmark's log).
func (l *liveLine) Writer() io.Writer { return &liveWriter{l: l} }

type liveWriter struct {
	l   *liveLine
	mu  sync.Mutex
	buf []byte
}

func (w *liveWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(w.buf[:i])); line != "" {
			w.l.show(line, true)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// elapsedText is a live line's text with the time since it began.
func elapsedText(elapsed time.Duration, text string) string {
	return fmt.Sprintf("[%5.1fs] %s", elapsed.Seconds(), text)
}

// redrawText is what redraws a terminal's line with text: back to the
// line's start, the text cut to width columns, the rest of the line
// erased.
func redrawText(text string, width int) string {
	if width > 1 && utf8.RuneCountInString(text) >= width {
		r := []rune(text)
		text = string(r[:width-2]) + "…"
	}
	return "\r" + text + "\033[K"
}

// barText renders a progress bar: "verify [=====     ]  50% 1.0 MiB / 2.0 MiB".
func barText(label string, done, total int64) string {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	n := int(frac * width)
	return fmt.Sprintf("%s [%s%s] %3.0f%% %s / %s", label, strings.Repeat("=", n), strings.Repeat(" ", width-n),
		100*frac, ckptBytes(done), ckptBytes(total))
}

// isTerminal reports whether w is a character device (a live line can be
// redrawn in place there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
