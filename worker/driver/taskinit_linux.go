package driver

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// nsCloneFlags are the namespaces a task's init starts in.
const nsCloneFlags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS

// runInit starts the task's init (cmd, this executable, with the task's
// output already wired), waits for it and returns how the task ended: as
// the init reports it (a task killed by a signal is reported as such, which
// the init's own exit status cannot say), else how the init itself ended
// (killed with the task's process group by SIGKILL).
func runInit(cmd *exec.Cmd, spec superviseSpec) exitStatus {
	is := initSpec{Path: spec.Path, Args: spec.Args, Env: spec.Env,
		Creds: spec.Creds, UID: spec.UID, GID: spec.GID, Groups: spec.Groups, Confine: spec.Confine}
	var cloneErr error
	start := func() (*os.File, error) {
		raw, err := json.Marshal(is)
		if err != nil {
			return nil, err
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer w.Close()
		// A fresh command for each try: an exec.Cmd starts once.
		c := exec.Command(cmd.Path)
		c.Stdout, c.Stderr = cmd.Stdout, cmd.Stderr
		c.Env = []string{taskInitEnv + "=" + string(raw)}
		c.ExtraFiles = []*os.File{w}
		c.SysProcAttr = &syscall.SysProcAttr{}
		if is.Confine.Namespaces {
			c.SysProcAttr.Cloneflags = nsCloneFlags
		}
		if err := c.Start(); err != nil {
			r.Close()
			return nil, err
		}
		cmd = c
		return r, nil
	}
	r, err := start()
	if err != nil && is.Confine.Namespaces {
		// A kernel without these namespaces, or a container that forbids
		// them: run the rest of the confinement without.
		cloneErr = err
		is.Confine.Namespaces = false
		r, err = start()
	}
	if err != nil {
		st := exitStatus{ExitCode: 127, Error: fmt.Sprintf("start %s: %v", spec.Path, err)}
		fmt.Fprintln(os.Stderr, "ark supervisor:", st.Error)
		return st
	}
	reported := make(chan *exitStatus, 1)
	go func() {
		defer r.Close()
		var exit *exitStatus
		dec := json.NewDecoder(r)
		for {
			var m initReport
			if err := dec.Decode(&m); err != nil {
				break
			}
			if m.Sandbox != nil && spec.Sandbox != "" {
				if cloneErr != nil {
					m.Sandbox.Missing = append(m.Sandbox.Missing, "namespaces: "+cloneErr.Error())
				}
				if err := writeJSONAtomic(spec.Sandbox, m.Sandbox); err != nil {
					fmt.Fprintf(os.Stderr, "ark supervisor: record the sandbox: %v\n", err)
				}
			}
			if m.Exit != nil {
				exit = m.Exit
			}
		}
		reported <- exit
	}()
	st := waitStatus(waitBounded(cmd))
	// The init is gone, so is its end of the pipe: the reader ends.
	if exit := <-reported; exit != nil {
		return *exit
	}
	return st
}
