package ckptbench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestRunSmall(t *testing.T) {
	res, err := Run(t.Context(), Config{Size: 4 << 20, Shards: 2, Rounds: 1, Checkpoints: 2, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.RawDiskMBps <= 0 || res.FileMBps <= 0 || res.SyncStallMs <= 0 || res.AsyncStallMs <= 0 {
		t.Errorf("missing figures: %+v", res)
	}
	if res.S3MBps != nil {
		t.Errorf("s3_mbps set without --s3")
	}
	var md bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| file:// checkpoint") {
		t.Errorf("table:\n%s", md.String())
	}
	b, _ := json.Marshal(res)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"raw_disk_mbps", "raw_parallel_mbps", "file_mbps", "sync_stall_ms", "async_stall_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %s", k)
		}
	}
	if _, ok := m["s3_mbps"]; ok {
		t.Errorf("JSON has s3_mbps without --s3")
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"512MiB", 512 << 20}, {"1GiB", 1 << 30}, {"64M", 64 << 20}, {"1000", 1000}, {"2KB", 2000}, {"5B", 5},
		{"", -1}, {"MiB", -1}, {"-1MiB", -1}, {"1.5GiB", -1}, {"0", -1}, {"12XB", -1},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
