package state

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// RegisterJobsRequest is several RegisterJob requests committed as one
// entry: the leader groups the submissions that arrive while earlier ones
// are committing, so that a burst costs one log entry, one state
// transaction and one index update instead of one of each per job.
type RegisterJobsRequest struct {
	Requests []RegisterJobRequest `json:"requests"`
}

// RegisterJobsResponse answers each request of a RegisterJobs entry, in
// order: a response, or the rejection a RegisterJob entry would have had.
type RegisterJobsResponse struct {
	Results []RegisterJobResult
}

// RegisterJobResult is one request's answer in a RegisterJobsResponse.
type RegisterJobResult struct {
	Response *RegisterJobResponse
	Err      error
}

// rejection marks an error that refuses one request and writes nothing:
// in a RegisterJobs entry it answers that request alone.
type rejection struct{ err error }

func (r *rejection) Error() string { return r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }

// applyRegisterJobs applies each request as applyRegisterJob would, in
// order, in the entry's one transaction: a token or ID that an earlier
// request of the same entry took is seen as if it came in its own entry.
// Every job of the entry is created at the entry's index. Anything but a
// rejection (a store error) fails the whole entry, so a request is never
// half applied.
func applyRegisterJobs(txn *memdb.Txn, index uint64, req *RegisterJobsRequest) (*RegisterJobsResponse, error) {
	out := &RegisterJobsResponse{Results: make([]RegisterJobResult, len(req.Requests))}
	stored := false
	for i := range req.Requests {
		resp, inserted, err := registerJob(txn, index, &req.Requests[i])
		var rej *rejection
		if errors.As(err, &rej) {
			out.Results[i].Err = rej.err
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Results[i].Response = resp
		stored = stored || inserted
	}
	if stored {
		if err := setIndex(txn, tableJobs, index); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EncodeRegisterJobs builds a RegisterJobs entry from RegisterJob entries
// that Encode made (the leader encodes each submission in its own request
// goroutine; the batch only joins them). The result decodes as
// RegisterJobsRequest{Requests: the entries' requests, in order}.
func EncodeRegisterJobs(entries [][]byte) ([]byte, error) {
	n := 16
	for _, e := range entries {
		n += len(e) + 1
	}
	var b bytes.Buffer
	b.Grow(n)
	b.WriteByte(byte(RegisterJobsType))
	b.WriteString(`{"requests":[`)
	for i, e := range entries {
		if len(e) < 2 || MessageType(e[0]) != RegisterJobType {
			return nil, fmt.Errorf("encode %s: request %d is not a %s entry", RegisterJobsType, i, RegisterJobType)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e[1:])
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}
