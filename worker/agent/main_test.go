package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/worker/driver"
)

// TestMain lets this test binary act as a task supervisor: the exec driver
// re-executes the running binary to supervise each task. With
// TEST_TASK=report-metrics it is a task that reports its figures to
// its agent, as the builtin runtime does (TestAgentMetrics).
func TestMain(m *testing.M) {
	driver.MaybeSupervise()
	if os.Getenv("TEST_TASK") == "report-metrics" {
		os.Exit(reportMetricsTask())
	}
	os.Exit(m.Run())
}

// testTaskMetrics is what the report-metrics task sends.
var testTaskMetrics = api.TaskMetrics{
	Train: &api.TrainMetrics{Step: 7, Loss: 2.5, TokensPerSecond: 1234},
	Serve: &api.ServeMetrics{
		Running: 2, Waiting: 1, OutputTokens: 99,
		TTFT:        &api.Histogram{Bounds: []float64{0.1, 1}, Counts: []uint64{3, 1, 1}, Sum: 4.2},
		TPOT:        &api.Histogram{Bounds: []float64{0.01}, Counts: []uint64{4, 0}, Sum: 0.02},
		Requests:    map[string]uint64{"": 3, "sql-lora": 2},
		RuleActions: map[string]uint64{"block": 1},
	},
}

// reportMetricsTask posts testTaskMetrics to the agent with the task's
// token, then stays running until it is stopped.
func reportMetricsTask() int {
	body, _ := json.Marshal(api.TaskReport{Metrics: &testTaskMetrics})
	req, err := http.NewRequest(http.MethodPost, os.Getenv("ARK_AGENT_ADDR")+"/v1/allocations/"+os.Getenv("ARK_ALLOC_ID")+"/report", bytes.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("ARK_TASK_TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	resp.Body.Close()
	fmt.Println("report:", resp.Status)
	if resp.StatusCode != http.StatusNoContent {
		return 1
	}
	time.Sleep(60 * time.Second)
	return 0
}
