package k8s_test

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func checkAgents(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c corev1.Container, flags map[string]string, sts *appsv1.StatefulSet) {
	pod := ds.Spec.Template.Spec
	if !selects(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("selector %v does not match the pod labels", ds.Spec.Selector.MatchLabels)
	}
	// GPU nodes only, and no GPU taken from the device plugin.
	gpuNode := false
	for k := range pod.NodeSelector {
		gpuNode = gpuNode || strings.Contains(k, "gpu")
	}
	if !gpuNode {
		t.Errorf("nodeSelector %v: want a GPU node label", pod.NodeSelector)
	}
	checkResources(t, c, false)
	if _, ok := flags["fake-gpus"]; ok {
		t.Error("--fake-gpus in the Kubernetes agent: it runs on GPU nodes")
	}

	// The servers it calls are the StatefulSet's pods, over HTTPS.
	server := sts.Spec.Template.Spec.Containers[0]
	var want []string
	for i := range 3 {
		want = append(want, fmt.Sprintf("https://%s-%d.%s.%s.svc.cluster.local:%d", sts.Name, i, sts.Spec.ServiceName, sts.Namespace, port(server, "http")))
	}
	if flags["servers"] != strings.Join(want, ",") {
		t.Errorf("--servers=%s, want %s", flags["servers"], strings.Join(want, ","))
	}
	if p := flagPort(t, "http", flags["http"]); p != port(c, "http") || p == 0 {
		t.Errorf("--http port %d, container port http %d", p, port(c, "http"))
	}
	if p := flagPort(t, "metrics-listen", flags["metrics-listen"]); p != port(c, "metrics") || p == 0 {
		t.Errorf("--metrics-listen port %d, container port metrics %d", p, port(c, "metrics"))
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.TCPSocket == nil || p.TCPSocket.Port.StrVal != "http" {
			t.Errorf("%s probe: want a TCP check of port http (the listener takes only mutual TLS)", name)
		}
	}
	if flags["task-user"] == "" || flags["task-user"] == "root" || flags["task-user"] == "0" {
		t.Errorf("--task-user=%q: tasks must not run as root", flags["task-user"])
	}

	// The data dir is on the host.
	onHost := false
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.HostPath != nil && flags["data-dir"] == vm.MountPath {
				onHost = true
			}
		}
	}
	if !onHost {
		t.Errorf("--data-dir=%s is not a hostPath mount", flags["data-dir"])
	}

	// Privileged in its own namespace only, and that namespace says why.
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("agent: expected privileged (see agent-daemonset.yaml for why); if that changed, change this test and namespaces.yaml")
	}
	if ds.Namespace == sts.Namespace {
		t.Errorf("agents share namespace %s with the servers, which enforces restricted", ds.Namespace)
	}
	ns := namespace(m, ds.Namespace)
	if ns == nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" || ns.Annotations["ark.dev/why-privileged"] == "" {
		t.Errorf("namespace %s: want enforce=privileged with an ark.dev/why-privileged annotation", ds.Namespace)
	}
	for _, s := range m.statefulSets {
		for _, sc := range s.Spec.Template.Spec.Containers {
			if sc.SecurityContext != nil && sc.SecurityContext.Privileged != nil && *sc.SecurityContext.Privileged {
				t.Errorf("StatefulSet %s container %s is privileged: only the agent may be", s.Name, sc.Name)
			}
		}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("agents need no Kubernetes API token: automountServiceAccountToken false")
	}
}
