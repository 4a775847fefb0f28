package audit

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/ark-sched/ark/internal/jsonstr"
)

// appendEntry appends e's JSON to dst: the bytes json.Marshal writes for
// it, without reflection (it was half the log's cost on the leader). A time
// outside UTC or the years 0-9999 (which json.Marshal may refuse) goes
// through json.Marshal, for its exact bytes or error. TestAppendEntryIsMarshal
// and FuzzAppendEntry hold it to json.Marshal.
func appendEntry(dst []byte, e *Entry) ([]byte, error) {
	if _, off := e.Time.Zone(); off != 0 || e.Time.Year() < 0 || e.Time.Year() > 9999 {
		js, err := json.Marshal(*e) // a copy: e itself stays off the heap
		if err != nil {
			return dst, err
		}
		return append(dst, js...), nil
	}
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","phase":`...)
	dst = jsonstr.Append(dst, e.Phase)
	dst = append(dst, `,"request":`...)
	dst = jsonstr.Append(dst, e.Request)
	dst = appendOmitEmpty(dst, `,"accessor":`, e.Accessor)
	dst = appendOmitEmpty(dst, `,"role":`, e.Role)
	dst = appendOmitEmpty(dst, `,"namespace":`, e.Namespace)
	dst = append(dst, `,"method":`...)
	dst = jsonstr.Append(dst, e.Method)
	dst = append(dst, `,"route":`...)
	dst = jsonstr.Append(dst, e.Route)
	dst = appendOmitEmpty(dst, `,"target":`, e.Target)
	dst = appendOmitEmpty(dst, `,"remote":`, e.Remote)
	if e.Code != 0 {
		dst = append(dst, `,"code":`...)
		dst = strconv.AppendInt(dst, int64(e.Code), 10)
	}
	dst = appendOmitEmpty(dst, `,"outcome":`, e.Outcome)
	dst = append(dst, `,"prev":`...)
	dst = jsonstr.Append(dst, e.Prev)
	dst = append(dst, `,"hash":`...)
	dst = jsonstr.Append(dst, e.Hash)
	return append(dst, '}'), nil
}

func appendOmitEmpty(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return jsonstr.Append(append(dst, key...), s)
}
