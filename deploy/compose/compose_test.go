// Package compose_test brings up deploy/compose/docker-compose.yml on the
// local Docker engine with the image `make image` builds, and checks the
// cluster works as containers: a leader, both agents ready, a gang job that
// succeeds, and a new leader with the job still there after the leader's
// container is killed.
package compose_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api"
)

// enableEnv turns the test on: it needs a Docker engine and docker-compose
// (CI's machine has both; .ci/run sets it) and takes about a minute.
const enableEnv = "ARK_COMPOSE_TEST"

// image is what the test builds and runs; its own name, so the test never
// replaces an ark:latest someone built with make image.
const (
	imageRepo = "ark-composetest"
	imageTag  = "test"
)

// cluster is one compose project.
type cluster struct {
	t       *testing.T
	root    string            // repository root
	project string            // compose project name
	env     []string          // ARK_IMAGE, ARK_NET, ARK_HTTP_PORT
	ids     map[string]string // service -> container ID
}

func TestComposeCluster(t *testing.T) {
	if os.Getenv(enableEnv) == "" {
		t.Skipf("set %s=1 to build the image and run the compose cluster (needs a Docker engine and docker-compose)", enableEnv)
	}
	for _, tool := range []string{"docker", "docker-compose"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s=1 but %s is not on PATH: %v", enableEnv, tool, err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var timings []string
	step := func(what string, began time.Time) {
		d := time.Since(began).Round(100 * time.Millisecond)
		timings = append(timings, fmt.Sprintf("%s %s", what, d))
		t.Logf("%s: %s", what, d)
	}
	defer func() { t.Logf("timings: %s", strings.Join(timings, ", ")) }()

	began := time.Now()
	out, err := run(root, nil, nil, "bash", "deploy/docker/build.sh", imageRepo, imageTag)
	if err != nil {
		t.Fatalf("make the image: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
	t.Cleanup(func() { _, _ = run(root, nil, nil, "docker", "rmi", imageRepo+":"+imageTag, imageRepo+":latest") })
	step("image build", began)

	began = time.Now()
	c := up(t, root)
	step("compose up", began)

	began = time.Now()
	waitUntil(t, 60*time.Second, "a leader and 2 ready nodes", func() bool {
		var nodes []api.Node
		if err := c.arkJSON("server-1", &nodes, "node", "list"); err != nil {
			return false
		}
		ready := 0
		for _, n := range nodes {
			if n.Status == "ready" && strings.Contains(n.Name, "agent-") {
				ready++
			}
		}
		return ready == 2
	})
	step("leader and nodes ready", began)

	// A 2-rank gang of 4 GPUs a rank: one rank on each agent's container,
	// rendezvous across the compose network.
	began = time.Now()
	id := c.submit("server-2")
	step("gang job succeeded", began)
	if out, err := c.ark("server-3", nil, "job", "logs", id, "--rank", "1"); err != nil || !strings.Contains(out, "all 2 ranks checked in") {
		t.Fatalf("rank 1's log through server-3: %v\n%s", err, out)
	}

	leader := c.leader("server-1", "")
	t.Logf("leader: %s", leader)
	killed := time.Now()
	if out, err := run(root, c.env, nil, "docker", "kill", c.container(leader)); err != nil {
		t.Fatalf("kill %s: %v\n%s", leader, err, out)
	}
	var survivor string
	for _, s := range []string{"server-1", "server-2", "server-3"} {
		if s != leader {
			survivor = s
			break
		}
	}
	var newLeader string
	waitUntil(t, 30*time.Second, "a new leader", func() bool {
		newLeader = c.leader(survivor, leader)
		return newLeader != ""
	})
	step("leader kill to new leader", killed)
	t.Logf("new leader: %s", newLeader)

	var job api.Job
	if err := c.arkJSON(survivor, &job, "job", "status", id); err != nil || job.Status != "succeeded" {
		t.Fatalf("job %s after the leader's loss: %v, status %q", id, err, job.Status)
	}
	// Writes flow again: a second gang is accepted and runs to success.
	id2 := c.submitOnly(survivor)
	step("leader kill to first accepted write", killed)
	began = time.Now()
	c.waitSucceeded(survivor, id2)
	step("second gang succeeded", began)
}

// up starts the compose cluster on a /24 of its own; a subnet that clashes
// with a network already on this engine is retried with another.
func up(t *testing.T, root string) *cluster {
	var lastOut string
	for try := 0; try < 4; try++ {
		subnet := fmt.Sprintf("172.30.%d", rand.IntN(256))
		c := &cluster{t: t, root: root, project: fmt.Sprintf("arktest%d%d", os.Getpid(), try),
			env: []string{"ARK_IMAGE=" + imageRepo + ":" + imageTag, "ARK_NET=" + subnet, "ARK_HTTP_PORT=" + freePort(t)}}
		out, err := c.compose("up", "-d")
		if err == nil {
			t.Cleanup(c.down)
			return c
		}
		lastOut = out
		c.down()
		if !strings.Contains(out, "overlap") && !strings.Contains(out, "port is already allocated") {
			break
		}
	}
	t.Fatalf("docker-compose up: %s", lastOut)
	return nil
}

func (c *cluster) compose(args ...string) (string, error) {
	return run(c.root, c.env, nil, "docker-compose", append([]string{"-f", "deploy/compose/docker-compose.yml", "-p", c.project}, args...)...)
}

// down tears the cluster down with its volumes, after printing the
// containers' logs when the test failed.
func (c *cluster) down() {
	if c.t.Failed() {
		out, _ := c.compose("logs", "--no-color", "--tail", "60")
		c.t.Logf("compose logs:\n%s", out)
	}
	if out, err := c.compose("down", "-v", "--remove-orphans", "--timeout", "20"); err != nil {
		c.t.Errorf("docker-compose down: %v\n%s", err, out)
	}
}

// container is the container of a compose service.
func (c *cluster) container(service string) string {
	if id, ok := c.ids[service]; ok {
		return id
	}
	out, err := c.compose("ps", "-q", service)
	if err != nil || strings.TrimSpace(out) == "" {
		c.t.Fatalf("container of %s: %v %s", service, err, out)
	}
	if c.ids == nil {
		c.ids = map[string]string{}
	}
	c.ids[service] = strings.TrimSpace(out)
	return c.ids[service]
}

// ark runs the CLI inside a service's container (its ARK_ADDR names all
// three servers). docker exec, not docker-compose exec: the same thing
// without half a second of Python start-up a call.
func (c *cluster) ark(service string, stdin []byte, args ...string) (string, error) {
	flags := []string{"exec"}
	if stdin != nil {
		flags = append(flags, "-i")
	}
	return run(c.root, c.env, stdin, "docker", append(append(flags, c.container(service), "ark"), args...)...)
}

func (c *cluster) arkJSON(service string, v any, args ...string) error {
	out, err := c.ark(service, nil, append(args, "-o", "json")...)
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return json.Unmarshal([]byte(out), v)
}

// leader asks one server (only it: ark health does not fail over) for the
// leader's name; "" while it knows none, or knows only not.
func (c *cluster) leader(service, not string) string {
	s := "http://" + c.serverIP(service) + ":4680"
	out, err := c.ark(service, nil, "health", "--addr", s, "--timeout", "3s")
	if err != nil {
		return ""
	}
	f := strings.Fields(out) // leader NAME at ADDR
	if len(f) < 2 || f[0] != "leader" || f[1] == not {
		return ""
	}
	return f[1]
}

func (c *cluster) serverIP(service string) string {
	n := strings.TrimPrefix(service, "server-")
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "ARK_NET="); ok {
			return v + ".1" + n
		}
	}
	c.t.Fatal("no ARK_NET")
	return ""
}

// submit submits examples/hello-gang.yaml through the CLI in a service's
// container and waits for it to succeed; it returns the job's ID.
//
// Not `job submit --wait`: the CLI's wait reads the job from the first
// server of ARK_ADDR, which may be a follower that has not applied the
// submission yet, and it gives up on that 404 at once (reported; reads are
// served locally by design). The polling below allows that lag for a few
// seconds and nothing else.
func (c *cluster) submit(service string) string {
	c.t.Helper()
	id := c.submitOnly(service)
	c.waitSucceeded(service, id)
	return id
}

// submitOnly submits examples/hello-gang.yaml and returns its ID once a
// server has acknowledged it.
func (c *cluster) submitOnly(service string) string {
	c.t.Helper()
	spec, err := os.ReadFile(filepath.Join(c.root, "examples/hello-gang.yaml"))
	if err != nil {
		c.t.Fatal(err)
	}
	out, err := c.ark(service, spec, "job", "submit", "-")
	if err != nil {
		c.t.Fatalf("submit hello-gang through %s: %v\n%s", service, err, out)
	}
	return strings.TrimSpace(out)
}

// waitSucceeded polls job id until it ends and fails the test unless it
// succeeded.
func (c *cluster) waitSucceeded(service, id string) {
	c.t.Helper()
	submitted := time.Now()
	var job api.Job
	waitUntil(c.t, 90*time.Second, "job "+id+" to end", func() bool {
		job = api.Job{}
		if err := c.arkJSON(service, &job, "job", "status", id); err != nil {
			if strings.Contains(err.Error(), "not found") && time.Since(submitted) < 5*time.Second {
				return false
			}
			c.t.Fatalf("status of %s through %s: %v", id, service, err)
		}
		return job.Terminal()
	})
	if job.Status != api.JobSucceeded {
		out, _ := c.ark(service, nil, "job", "status", id)
		c.t.Fatalf("job %s ended %s:\n%s", id, job.Status, out)
	}
}

// run runs a command in dir with extra environment and returns its
// combined output. Every command gets 3 minutes at most, the image build
// 10 (a cold build cache on 2 busy cores).
func run(dir string, env []string, stdin []byte, name string, args ...string) (string, error) {
	limit := 3 * time.Minute
	if name == "bash" {
		limit = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	d = testenv.Scale(d)
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freePort is a free TCP port on the host's loopback, for server-1's
// published API.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
