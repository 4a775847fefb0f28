package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/filestore"
	"github.com/ark-sched/ark/storage/storagetest"
)

func TestLiveModeFor(t *testing.T) {
	t.Parallel()
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0) // a character device, as a terminal is
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var buf bytes.Buffer
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, tc := range []struct {
		name             string
		quiet, logOffTTY bool
		w                interface{ Write([]byte) (int, error) }
		want             liveMode
	}{
		{"terminal", false, false, tty, liveRedraw},
		{"terminal, -o json", true, true, tty, liveOff},
		{"pipe, a status", false, true, &buf, liveLog},
		{"pipe, a bar", false, false, &buf, liveOff},
		{"file, a status", false, true, file, liveLog},
		{"file, -o json", true, true, file, liveOff},
	} {
		if got := liveModeFor(tc.w, tc.quiet, tc.logOffTTY); got != tc.want {
			t.Errorf("%s: mode %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestLiveText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{elapsedText(5100*time.Millisecond, "1 running"), "[  5.1s] 1 running"},
		{elapsedText(125*time.Second, "x"), "[125.0s] x"},
		{redrawText("short", 80), "\rshort\033[K"},
		{redrawText("0123456789", 8), "\r012345…\033[K"},    // never wraps a narrow terminal
		{redrawText("ééééé", 5), "\rééé…\033[K"},            // counts characters, not bytes
		{redrawText("0123456789", 0), "\r0123456789\033[K"}, // width unknown
		{barText("verify", 0, 2<<20), "verify [                              ]   0% 0 B / 2.0 MiB"},
		{barText("copy", 1<<20, 2<<20), "copy [===============               ]  50% 1.0 MiB / 2.0 MiB"},
		{barText("copy", 3<<20, 2<<20), "copy [==============================] 100% 3.0 MiB / 2.0 MiB"}, // clamped
		{barText("copy", 0, 0), "copy [==============================] 100% 0 B / 0 B"},                 // nothing to do is done
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestLiveLineModes: off a terminal a status prints each change once on
// its own line and a bar prints nothing; with quiet nothing prints; on a
// terminal a bar is redrawn at most every liveInterval but its last
// state always, and end erases it.
func TestLiveLineModes(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	l := &liveLine{w: &log, mode: liveLog, start: time.Now()}
	for _, s := range []string{"1 pending", "1 pending", "1 running", "1 succeeded"} {
		l.show(s, true)
	}
	l.end(true)
	if lines := strings.Split(strings.TrimSpace(log.String()), "\n"); len(lines) != 3 || !strings.HasSuffix(lines[1], "] 1 running") {
		t.Errorf("log mode printed %q, want each change once", lines)
	}
	for _, quiet := range []bool{true, false} {
		var b bytes.Buffer
		bar := newLiveLine(&b, quiet, false)
		bar.bar("verify", 1, 2)
		bar.bar("verify", 2, 2)
		bar.end(false)
		if b.Len() != 0 {
			t.Errorf("a bar off a terminal (quiet %v) printed %q", quiet, b.String())
		}
	}
	var term bytes.Buffer
	r := &liveLine{w: &term, mode: liveRedraw, start: time.Now(), width: 200}
	for i := range int64(100) {
		r.bar("copy", i, 100)
	}
	r.bar("copy", 100, 100)
	if n := strings.Count(term.String(), "\r"); n != 2 {
		t.Errorf("100 quick updates and the last drew %d times, want 2 (the first and the last)", n)
	}
	if !strings.Contains(term.String(), "100% 100 B / 100 B") {
		t.Errorf("the last state was not drawn: %q", term.String())
	}
	r.end(false)
	if !strings.HasSuffix(term.String(), "\r\033[K") {
		t.Errorf("end left the bar: %q", term.String())
	}
}

// TestLiveWriter: a benchmark's log lines become the live line's text,
// whole lines only, however the writes split them.
func TestLiveWriter(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := &liveLine{w: &b, mode: liveLog, start: time.Now()}
	w := l.Writer()
	for _, p := range []string{"raw disk: 812 ", "MB/s\nfile://: 7", "90 MB/s\n\n", "s3://: partial"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(got) != 2 || !strings.HasSuffix(got[0], "] raw disk: 812 MB/s") || !strings.HasSuffix(got[1], "] file://: 790 MB/s") {
		t.Errorf("lines %q", got)
	}
}

// TestCkptCommandsQuiet: ark ckpt verify and cp draw no progress when
// stderr is not a terminal, nor with -o json; what they print on stdout
// is their answer.
func TestCkptCommandsQuiet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := filestore.Open(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	st := &checkpoint.State{Job: "ft-1", Step: 50, WorldSize: 1, Shards: []checkpoint.Shard{{Rank: 0, Tensors: []checkpoint.Tensor{
		{Name: "w", DType: "f32", Shape: []int64{1 << 16}, Data: storagetest.Payload(1, 4<<16)}}}}}
	if _, err := checkpoint.Save(t.Context(), s, st, checkpoint.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	src := "file://" + filepath.Join(dir, "src") + "/ft-1/50"
	for i, args := range [][]string{
		{"ckpt", "verify", src},
		{"ckpt", "verify", src, "-o", "json"},
		{"ckpt", "cp", src, "file://" + filepath.Join(dir, "dst1")},
		{"ckpt", "cp", src, "file://" + filepath.Join(dir, "dst2"), "-o", "json"},
		{"ckpt", "verify", "file://" + filepath.Join(dir, "dst2") + "/ft-1/50"},
	} {
		root := newRoot()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("ark %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		if errOut.Len() != 0 {
			t.Errorf("ark %s printed on stderr (not a terminal): %q", strings.Join(args, " "), errOut.String())
		}
		if want := []string{"verified 1 shards", `"ok": true`, "copied " + src, `"shards": 1`, "verified 1 shards"}[i]; !strings.Contains(out.String(), want) {
			t.Errorf("ark %s: stdout %q lacks %q", strings.Join(args, " "), out.String(), want)
		}
	}
}
