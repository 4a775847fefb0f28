package cluster

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestHCLogFormatValues: values raft formats with hclog.Fmt reach the log
// formatted, never as a raw "%+v" and its arguments; raft's servers read
// as names, addresses and suffrage.
func TestHCLogFormatValues(t *testing.T) {
	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	l := NewHCLog(zap.New(core), "raft", hclog.Debug)
	servers := []raft.Server{{Suffrage: raft.Voter, ID: "s1", Address: "127.0.0.1:4681"}, {Suffrage: raft.Nonvoter, ID: "s2", Address: "127.0.0.1:4683"}}
	l.Info("initial configuration", "index", 1, "servers", hclog.Fmt("%+v", servers))
	l.With("peer", hclog.Fmt("%s-%d", "p", 2)).Warn("peer slow")
	out := buf.String()
	for _, want := range []string{
		`"servers": "s1 127.0.0.1:4681 (voter), s2 127.0.0.1:4683 (nonvoter)"`,
		`"peer": "p-2"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "%+v") || strings.Contains(out, "%s") {
		t.Errorf("a format verb reached the log:\n%s", out)
	}
}
