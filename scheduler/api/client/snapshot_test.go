package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSnapshotRestoreFromRetries: a restore that reached a server which
// then lost its leader (503 after the whole upload) is uploaded again, in
// full, up to three times; the bytes the server gets are the file's each
// time.
func TestSnapshotRestoreFromRetries(t *testing.T) {
	data := bytes.Repeat([]byte("snapshot"), 64<<10)
	for _, tc := range []struct {
		name      string
		fail      int32 // answers 503 to this many full uploads first
		wantErr   string
		wantTries int32
	}{
		{"first try", 0, "", 1},
		{"leader lost twice", 2, "", 3},
		{"leader lost every time", 100, "uploaded 3 times", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tries atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, err := io.ReadAll(r.Body)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("upload %d: %d bytes, %v", tries.Load()+1, len(got), err)
				}
				if tries.Add(1) <= tc.fail {
					http.Error(w, `{"error":"not the leader"}`, http.StatusServiceUnavailable)
					return
				}
				_, _ = w.Write([]byte(`{"restored":true}`))
			}))
			defer srv.Close()
			c, err := New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			c.RetryFor = 2 * time.Second
			err = c.SnapshotRestoreFrom(context.Background(), bytes.NewReader(data), int64(len(data)))
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tries.Load() != tc.wantTries {
				t.Errorf("%d uploads, want %d", tries.Load(), tc.wantTries)
			}
		})
	}
}

// TestSnapshotRestoreFromWaitsForLeader: servers that refuse a restore at
// once (no leader, during an election) without reading it are tried again
// for RetryFor, as every call is; those refusals are not uploads, however
// small the snapshot (a small one is all sent before the refusal unless
// the server asks for it).
func TestSnapshotRestoreFromWaitsForLeader(t *testing.T) {
	data := []byte("a small snapshot")
	const refusals = 5
	var requests, uploads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= refusals {
			http.Error(w, `{"error":"no leader elected; retry shortly"}`, http.StatusServiceUnavailable)
			return
		}
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("upload: %q, %v", got, err)
		}
		uploads.Add(1)
		_, _ = w.Write([]byte(`{"restored":true}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.RetryFor = 10 * time.Second
	if err := c.SnapshotRestoreFrom(context.Background(), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("restore after %d refusals: %v", refusals, err)
	}
	if requests.Load() != refusals+1 || uploads.Load() != 1 {
		t.Errorf("%d requests, %d uploads: want %d and 1", requests.Load(), uploads.Load(), refusals+1)
	}
}
