package ui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Live pages: a stream of Server-Sent Events over the store's blocking
// queries. The browser reads it with fetch(), not EventSource, because
// EventSource cannot send the token header.

const (
	// streamWait is how long one blocking query waits for a change
	// before the stream sends a keep-alive comment.
	streamWait = 30 * time.Second
	// jobRefresh redraws a job page even when the state did not move:
	// its log and loss curve live on the agent, not in the state.
	jobRefresh = 5 * time.Second
	// streamLife ends a stream; the page opens a new one from the last
	// index it saw, so that no stream holds a connection for ever.
	streamLife = 5 * time.Minute
)

func (u *UI) stream(w http.ResponseWriter, r *http.Request, page string) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	var index uint64
	if v := r.URL.Query().Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("query parameter index: want a non-negative integer, got %q", v), http.StatusBadRequest)
			return
		}
		index = n
	}
	wait := streamWait
	if page == "job" {
		wait = jobRefresh
	}
	// The request has no body: without this, the server's body timeout
	// would end the stream (net/http cancels a request whose connection's
	// read deadline passes). The write deadline below still catches a
	// reader that stopped reading.
	_ = rc.SetReadDeadline(time.Time{})
	ctx := r.Context()
	end := time.Now().Add(streamLife)
	w.WriteHeader(http.StatusOK)
	for first := true; time.Now().Before(end); first = false {
		// The server's write deadline covers one blocking query; a
		// stream lives on, one wait at a time.
		_ = rc.SetWriteDeadline(time.Now().Add(wait + 30*time.Second))
		qctx, cancel := context.WithTimeout(ctx, wait)
		v, err := u.src.View(qctx, index)
		cancel()
		if ctx.Err() != nil {
			return
		}
		var ev bytes.Buffer
		failed := err != nil
		switch {
		case failed:
			writeEvent(&ev, "failure", 0, []byte(err.Error()))
		case v.Index > index || first || page == "job":
			body, rerr := u.render(ctx, page, v, r.URL.Query())
			if rerr != nil {
				writeEvent(&ev, "failure", v.Index, []byte(rerr.Error()))
				failed = true
				break
			}
			writeEvent(&ev, "page", v.Index, body)
			index = max(index, v.Index)
		default:
			ev.WriteString(": no change\n\n")
		}
		if _, err := w.Write(ev.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil || failed {
			return // after a failure the page shows it and reconnects
		}
	}
}

// writeEvent writes one event; every line of data is its own data: field.
func writeEvent(b *bytes.Buffer, name string, id uint64, data []byte) {
	fmt.Fprintf(b, "event: %s\nid: %d\n", name, id)
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
}
