package cluster

import (
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// hclogAdapter routes hashicorp/raft's logs through zap.
type hclogAdapter struct {
	z     *zap.SugaredLogger
	name  string
	args  []any
	level hclog.Level
}

// NewHCLog returns an hclog.Logger that writes to z at level and above.
func NewHCLog(z *zap.Logger, name string, level hclog.Level) hclog.Logger {
	return &hclogAdapter{z: z.Named(name).WithOptions(zap.AddCallerSkip(2)).Sugar(), name: name, level: level}
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level < h.level || level == hclog.Off {
		return
	}
	kv := append(append([]any(nil), h.args...), args...)
	for i, v := range kv {
		kv[i] = plainValue(v)
	}
	switch {
	case level <= hclog.Debug:
		h.z.Debugw(msg, kv...)
	case level == hclog.Info:
		h.z.Infow(msg, kv...)
	case level == hclog.Warn:
		h.z.Warnw(msg, kv...)
	default:
		h.z.Errorw(msg, kv...)
	}
}

func (h *hclogAdapter) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *hclogAdapter) IsTrace() bool                 { return h.level <= hclog.Trace }
func (h *hclogAdapter) IsDebug() bool                 { return h.level <= hclog.Debug }
func (h *hclogAdapter) IsInfo() bool                  { return h.level <= hclog.Info }
func (h *hclogAdapter) IsWarn() bool                  { return h.level <= hclog.Warn }
func (h *hclogAdapter) IsError() bool                 { return h.level <= hclog.Error }
func (h *hclogAdapter) ImpliedArgs() []any            { return h.args }
func (h *hclogAdapter) Name() string                  { return h.name }
func (h *hclogAdapter) SetLevel(l hclog.Level)        { h.level = l }
func (h *hclogAdapter) GetLevel() hclog.Level         { return h.level }

func (h *hclogAdapter) With(args ...any) hclog.Logger {
	c := *h
	c.args = append(append([]any(nil), h.args...), args...)
	return &c
}

func (h *hclogAdapter) Named(name string) hclog.Logger {
	c := *h
	c.name = h.name + "." + name
	c.z = h.z.Named(name)
	return &c
}

func (h *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

func (h *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		line := strings.TrimSpace(string(p))
		level := hclog.Info
		for _, l := range []struct {
			tag   string
			level hclog.Level
		}{{"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error}, {"[WARN]", hclog.Warn}, {"[DEBUG]", hclog.Debug}, {"[TRACE]", hclog.Trace}} {
			if strings.Contains(line, l.tag) {
				level = l.level
				break
			}
		}
		h.Log(level, line)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// HCLogLevel maps a zap level to hclog's.
func HCLogLevel(l zapcore.Level) hclog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return hclog.Debug
	case l == zapcore.InfoLevel:
		return hclog.Info
	case l == zapcore.WarnLevel:
		return hclog.Warn
	}
	return hclog.Error
}

// plainValue renders a value hclog would format itself: hclog.Fmt's
// format and arguments (raft logs its configuration as Fmt("%+v",
// servers)), which zap would print as a raw list with the "%+v" in it.
// Raft's servers read as "NAME ADDRESS (voter)".
func plainValue(v any) any {
	f, ok := v.(hclog.Format)
	if !ok || len(f) == 0 {
		return v
	}
	if len(f) == 2 {
		if servers, ok := f[1].([]raft.Server); ok {
			return serversText(servers)
		}
	}
	format, ok := f[0].(string)
	if !ok {
		return fmt.Sprint(f...)
	}
	return fmt.Sprintf(format, f[1:]...)
}

// serversText is a Raft configuration in words: "s1 127.0.0.1:4681
// (voter), s2 127.0.0.1:4683 (nonvoter)".
func serversText(servers []raft.Server) string {
	parts := make([]string, len(servers))
	for i, s := range servers {
		parts[i] = fmt.Sprintf("%s %s (%s)", s.ID, s.Address, strings.ToLower(s.Suffrage.String()))
	}
	return strings.Join(parts, ", ")
}
