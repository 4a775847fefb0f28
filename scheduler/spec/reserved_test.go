package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestReservedEnvAndWorkDir: a spec may not set Ark's own variables (any
// ARK_*, the agent's token among them) nor the rendezvous and device
// variables, and its workDir must stay inside the allocation's directory:
// each is refused at validation with the field's path, never cleaned.
func TestReservedEnvAndWorkDir(t *testing.T) {
	tests := []struct {
		name      string
		env       string // YAML map
		workDir   string
		wantPath  string // "" : valid
		wantInMsg string
	}{
		{"plain env", "{FOO: bar, PATH: /opt/bin}", "", "", ""},
		{"agent token", "{ARK_TOKEN: stolen}", "", "task.exec.env.ARK_TOKEN", "set by Ark"},
		{"any ARK_ name", "{ARK_SOMETHING_NEW: x}", "", "task.exec.env.ARK_SOMETHING_NEW", "set by Ark"},
		{"task token", "{ARK_TASK_TOKEN: x}", "", "task.exec.env.ARK_TASK_TOKEN", "set by Ark"},
		{"cuda devices", "{CUDA_VISIBLE_DEVICES: '0,1,2,3'}", "", "task.exec.env.CUDA_VISIBLE_DEVICES", "set by Ark"},
		{"mps limit", "{CUDA_MPS_PIPE_DIRECTORY: /tmp/x}", "", "task.exec.env.CUDA_MPS_PIPE_DIRECTORY", "set by Ark"},
		{"nccl hca", "{NCCL_IB_HCA: mlx5_9}", "", "task.exec.env.NCCL_IB_HCA", "set by Ark"},
		{"nccl ifname", "{NCCL_SOCKET_IFNAME: eth9}", "", "task.exec.env.NCCL_SOCKET_IFNAME", "set by Ark"},
		{"rank", "{RANK: '0'}", "", "task.exec.env.RANK", "set by Ark"},
		{"world size", "{WORLD_SIZE: '9'}", "", "task.exec.env.WORLD_SIZE", "set by Ark"},
		{"local rank", "{LOCAL_RANK: '0'}", "", "task.exec.env.LOCAL_RANK", "set by Ark"},
		{"node rank", "{NODE_RANK: '0'}", "", "task.exec.env.NODE_RANK", "set by Ark"},
		{"master addr", "{MASTER_ADDR: evil}", "", "task.exec.env.MASTER_ADDR", "set by Ark"},
		{"master port", "{MASTER_PORT: '1'}", "", "task.exec.env.MASTER_PORT", "set by Ark"},
		{"relative workDir", "{}", "out/run-1", "", ""},
		{"dot workDir", "{}", "./out", "", ""},
		{"absolute workDir", "{}", "/etc", "task.exec.workDir", "absolute"},
		{"root workDir", "{}", "/", "task.exec.workDir", "absolute"},
		{"parent workDir", "{}", "../../x", "task.exec.workDir", "'..'"},
		{"inner parent workDir", "{}", "a/../../b", "task.exec.workDir", "'..'"},
		{"trailing parent workDir", "{}", "a/..", "task.exec.workDir", "'..'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wd := ""
			if tt.workDir != "" {
				wd = fmt.Sprintf(", workDir: %q", tt.workDir)
			}
			doc := fmt.Sprintf("name: a\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [x], env: %s%s}}\n", tt.env, wd)
			_, err := Parse([]byte(doc))
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("want spec.Errors at %s, got %v", tt.wantPath, err)
			}
			found := false
			for _, e := range es {
				if e.Path == tt.wantPath && strings.Contains(e.Msg, tt.wantInMsg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want an error at %s mentioning %q, got %v", tt.wantPath, tt.wantInMsg, es)
			}
		})
	}
}
