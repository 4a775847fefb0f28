package server

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestJobGC: a finished job is forgotten once it is older than the
// threshold; a pending one stays.
func TestJobGC(t *testing.T) {
	s := startServer(t, Config{JobGCThreshold: 200 * time.Millisecond})
	c, _ := client.New(s.HTTPAddr())
	bg := context.Background()
	spec := func(name string) []byte {
		return []byte(`{"name":"` + name + `","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`)
	}
	done, err := c.SubmitJob(bg, spec("done"))
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := c.SubmitJob(bg, spec("waiting"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CancelJob(bg, done.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the cancelled job forgotten", func() bool {
		_, _, err := c.Job(bg, done.ID, 0, 0)
		var ae *client.APIError
		return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
	})
	j, _, err := c.Job(bg, waiting.ID, 0, 0)
	if err != nil || j.Status != api.JobPending {
		t.Fatalf("pending job: %v %+v", err, j)
	}
}
