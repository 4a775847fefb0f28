package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/nccl"
	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/kernels/cuda"
	"github.com/ark-sched/ark/worker/train"
)

// openDevice opens the compute device of a builtin task: "cpu", "cuda"
// (GPU 0 of the task's CUDA_VISIBLE_DEVICES) or "auto": cuda when the task
// has a GPU and the CUDA driver loads, else the CPU with threads threads.
func openDevice(kind string, threads int, log io.Writer) (kernels.Device, error) {
	switch kind {
	case "cpu":
		return cpu.New(threads), nil
	case "cuda":
		d, err := cuda.New(0)
		if err != nil {
			return nil, fmt.Errorf("--device cuda: %w", err)
		}
		return d, nil
	case "auto", "":
		vis := os.Getenv("CUDA_VISIBLE_DEVICES")
		if vis == "" || vis == "-1" || vis == "none" || cuda.Available() != nil {
			return cpu.New(threads), nil // no GPU given, or no CUDA driver here
		}
		d, err := cuda.New(0)
		if err != nil {
			fmt.Fprintf(log, "cuda unavailable (%v); computing on the CPU\n", err)
			return cpu.New(threads), nil
		}
		return d, nil
	}
	return nil, usagef("--device must be auto, cpu or cuda, got %q", kind)
}

// describe names a device for the progress lines.
func describe(d kernels.Device) string {
	if ds, ok := d.(kernels.Describer); ok {
		return ds.Describe()
	}
	return d.Name()
}

// deviceComm builds NCCL over the ranks of comm when the device is a CUDA
// GPU and libnccl.so.2 loads, so gradients are averaged in device memory;
// otherwise nil (the trainer then stages them through host memory over
// Ark's collectives) with the reason on log.
func deviceComm(ctx context.Context, d kernels.Device, comm *collective.Communicator, log io.Writer) (train.DeviceComm, func(), error) {
	cd, ok := d.(*cuda.Device)
	if !ok || comm == nil {
		return nil, func() {}, nil
	}
	lib, err := nccl.Load()
	if err != nil {
		if errors.Is(err, nccl.ErrNoLibrary) {
			fmt.Fprintf(log, "NCCL not found (%v); gradients go through host memory over Ark's collectives\n", err)
			return nil, func() {}, nil
		}
		return nil, nil, err
	}
	// NCCL runs on the CUDA context current on the calling thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cd.MakeCurrent(); err != nil {
		return nil, nil, err
	}
	nc, err := nccl.Bootstrap(ctx, lib, comm)
	if err != nil {
		return nil, nil, fmt.Errorf("nccl: %w", err)
	}
	return nc, func() { _ = nc.Close() }, nil
}
