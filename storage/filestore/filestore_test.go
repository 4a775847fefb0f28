package filestore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/filestore"
	"github.com/ark-sched/ark/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := filestore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Puts that crashed left their staging files.
	if err := os.Mkdir(filepath.Join(dir, ".ark-tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, ".ark-tmp", "put-crashed")
	if err := os.WriteFile(old, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, ".ark-tmp", "put-running")
	if err := os.WriteFile(fresh, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.SweepIncomplete(t.Context(), "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old temp file survived Sweep: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file removed by Sweep: %v", err)
	}
	if infos, err := s.List(t.Context(), ""); err != nil || len(infos) != 0 {
		t.Errorf("List shows temp files: %v %v", infos, err)
	}
}

func TestURI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x y")
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.URI(), "file://"+filepath.ToSlash(filepath.Dir(dir))+"/x%20y"; got != want {
		t.Errorf("URI = %q, want %q", got, want)
	}
}

// A reader may open a store it cannot write (a task reading a base model
// from a root-owned directory): opening creates nothing in it, and the
// first put makes the staging directory.
func TestOpenCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("Open created %v", ents)
	}
	if inc, err := s.ListIncomplete(context.Background(), ""); err != nil || len(inc) != 0 {
		t.Errorf("ListIncomplete = %v, %v", inc, err)
	}
	if err := s.SweepIncomplete(context.Background(), "", time.Hour); err != nil {
		t.Errorf("SweepIncomplete: %v", err)
	}
	if err := s.Put(context.Background(), "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".ark-tmp")); err != nil {
		t.Errorf("the first put made no staging directory: %v", err)
	}
}
