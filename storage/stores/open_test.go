package stores

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/filestore"
	"github.com/ark-sched/ark/storage/s3"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		uri     string
		want    string // URI() of the store, or an error substring
		wantErr bool
	}{
		{uri: "file://" + dir, want: "file://" + dir},
		{uri: dir + "/plain", want: "file://" + dir + "/plain"},
		{uri: "s3://bucket/pre/fix?endpoint=http://127.0.0.1:1", want: "s3://bucket/pre/fix"},
		{uri: "gs://bucket", want: "unknown scheme", wantErr: true},
		{uri: "file://", want: "missing directory", wantErr: true},
	}
	for _, tt := range tests {
		s, err := Open(t.Context(), tt.uri, Options{})
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%q) = %v, want error %q", tt.uri, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tt.uri, err)
			continue
		}
		if got := s.(storage.Describer).URI(); got != tt.want {
			t.Errorf("Open(%q).URI() = %q, want %q", tt.uri, got, tt.want)
		}
	}
	s, _ := Open(t.Context(), "s3://b", Options{S3: s3.Options{Endpoint: "http://127.0.0.1:1"}})
	if _, ok := s.(*s3.Store); !ok {
		t.Errorf("s3 URI gave %T", s)
	}
	s, _ = Open(t.Context(), filepath.Join(dir, "x"), Options{})
	if _, ok := s.(*filestore.Store); !ok {
		t.Errorf("path gave %T", s)
	}
}
