package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// SnapshotRestoreFrom replaces the cluster's state with the snapshot in r
// (size bytes), streamed: a state of gigabytes is never held in memory.
// Like every call it tries the servers in turn, for up to RetryFor, while
// none has a leader or can be reached (an election); unlike them one try is
// not bounded by AttemptTimeout (the upload and the restore through Raft
// take as long as the state is large), only by ctx. A try that delivered
// the whole snapshot and then lost its leader (the restore itself can
// outlast a leadership) starts the RetryFor window again, up to
// maxRestoreUploads uploads in all: restoring the same snapshot twice
// leaves the same state. Each try reads r through its own section reader:
// the transport may still be reading a try's body when its answer comes.
func (c *Client) SnapshotRestoreFrom(ctx context.Context, r io.ReaderAt, size int64) error {
	deadline := time.Now().Add(c.RetryFor)
	backoff := 50 * time.Millisecond
	uploads := 0
	for {
		var lastErr error
		for _, addr := range c.addrs {
			body := &countingReader{r: io.NewSectionReader(r, 0, size)}
			retry, err := c.restoreOnce(ctx, addr, body, size)
			if !retry {
				return err
			}
			lastErr = err
			if size > 0 && body.n.Load() >= size {
				uploads++
				if uploads >= maxRestoreUploads {
					return fmt.Errorf("snapshot uploaded %d times, each time the leader changed before the restore completed: %w", uploads, err)
				}
				deadline = time.Now().Add(c.RetryFor)
				backoff = 50 * time.Millisecond
			}
		}
		if time.Now().Add(backoff).After(deadline) {
			return lastErr
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// maxRestoreUploads bounds how often one restore sends the whole snapshot.
const maxRestoreUploads = 3

// countingReader counts the bytes read through it; the transport reads it
// on its own goroutine.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// restoreOnce uploads the snapshot to one server; retry is true when
// another try may succeed (no leader now, or no answer).
func (c *Client) restoreOnce(ctx context.Context, addr string, body io.Reader, size int64) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, addr+"/v1/operator/snapshot", io.NopCloser(body))
	if err != nil {
		return false, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	// The body goes only once the server asks for it (the transport
	// waits up to its ExpectContinueTimeout): a server that refuses at
	// once, with no leader during an election, gets none. Without this a
	// small snapshot was all in the socket before that refusal came and
	// counted as an upload, so three refusals within a second ended the
	// restore instead of waiting RetryFor for the new leader.
	req.Header.Set("Expect", "100-continue")
	tok := c.Token
	if p := c.swapped.Load(); p != nil {
		tok = *p
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return true, err
	}
	_, err = decodeAnswer(resp, nil)
	return resp.StatusCode == http.StatusServiceUnavailable, err
}
