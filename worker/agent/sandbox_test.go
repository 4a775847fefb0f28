package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestTaskDoesNotInheritAgentEnv: an agent started with its token and other
// secrets in its environment runs a task that prints its environment; none
// of them reach the task, while PATH and Ark's own variables do.
func TestTaskDoesNotInheritAgentEnv(t *testing.T) {
	t.Setenv("ARK_TOKEN", "agent-secret-token")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "cloud-secret")
	t.Setenv("LC_ALL", "C")
	c := cluster(t, 1)
	resp, err := c.SubmitJob(context.Background(), jobSpec("envdump", 1, 1, `env; echo END`))
	if err != nil {
		t.Fatal(err)
	}
	job := waitJob(t, c, resp.ID, 20*time.Second)
	if job.Status != api.JobSucceeded {
		t.Fatalf("job %s: %s", job.Status, job.Reason)
	}
	out := logs(t, c, resp.ID, 0)
	if !strings.Contains(out, "END") {
		t.Fatalf("task output incomplete: %q", out)
	}
	for _, leak := range []string{"agent-secret-token", "ARK_TOKEN=", "cloud-secret", "AWS_SECRET_ACCESS_KEY"} {
		if strings.Contains(out, leak) {
			t.Errorf("task environment holds %q:\n%s", leak, out)
		}
	}
	for _, want := range []string{"PATH=", "LC_ALL=C", "HOME=", "ARK_ALLOC_ID=", "ARK_TASK_TOKEN=", "GREETING=hi"} {
		if !strings.Contains(out, want) {
			t.Errorf("task environment lacks %q:\n%s", want, out)
		}
	}
}

// TestAllowedEnv: only PATH, the locale and TZ of the agent's environment
// pass; PATH has a default.
func TestAllowedEnv(t *testing.T) {
	got := allowedEnv([]string{"ARK_TOKEN=x", "PATH=/p", "LANG=C.UTF-8", "LC_TIME=C", "TZ=UTC", "HOME=/root", "SSH_AUTH_SOCK=/s", "ARK_SUPERVISE={}"})
	want := map[string]string{"PATH": "/p", "LANG": "C.UTF-8", "LC_TIME": "C", "TZ": "UTC"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if p := allowedEnv(nil)["PATH"]; p != defaultPath {
		t.Errorf("default PATH %q, want %q", p, defaultPath)
	}
}
