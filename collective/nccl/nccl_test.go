package nccl

import (
	"errors"
	"strings"
	"testing"
)

func TestAbsentLibraryIsACleanError(t *testing.T) {
	_, err := open("libnccl-does-not-exist.so.2")
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "libnccl-does-not-exist.so.2 not found: ") {
		t.Fatalf("got %v", err)
	}
}

func TestLoad(t *testing.T) {
	l, err := Load()
	if err != nil {
		if !errors.Is(err, ErrNoLibrary) || !strings.HasPrefix(err.Error(), "libnccl.so.2 not found: ") {
			t.Fatalf("Load without the library: %v", err)
		}
		t.Skipf("no NCCL here: %v", err)
	}
	v, err := l.Version()
	if err != nil || v < 20000 {
		t.Fatalf("Version = %d, %v", v, err)
	}
	if _, err := l.NewUniqueID(); err != nil {
		t.Fatalf("NewUniqueID: %v", err)
	}
}
