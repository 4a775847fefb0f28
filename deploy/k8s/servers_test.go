package k8s_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func checkServers(t *testing.T, m *manifests, sts *appsv1.StatefulSet, c corev1.Container, flags map[string]string) {
	pod := sts.Spec.Template.Spec
	labels := sts.Spec.Template.Labels
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", sts.Spec.Replicas)
	}
	if flags["bootstrap-expect"] != "3" {
		t.Errorf("--bootstrap-expect=%s, want 3 (the replicas)", flags["bootstrap-expect"])
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: a server is ready only once all three form a cluster, so they must start in parallel", sts.Spec.PodManagementPolicy)
	}
	if !selects(sts.Spec.Selector.MatchLabels, labels) {
		t.Errorf("selector %v does not match the pod labels %v", sts.Spec.Selector.MatchLabels, labels)
	}

	// The headless Service names the pods that --join lists.
	var headless *corev1.Service
	for _, s := range m.services {
		if s.Name == sts.Spec.ServiceName && s.Namespace == sts.Namespace {
			headless = s
		}
	}
	if headless == nil {
		t.Fatalf("no Service %s/%s (serviceName)", sts.Namespace, sts.Spec.ServiceName)
	}
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: want clusterIP None and publishNotReadyAddresses (servers find each other before any is ready)", headless.Name)
	}
	var want []string
	for i := range 3 {
		want = append(want, fmt.Sprintf("%s-%d.%s.%s.svc.cluster.local:%d", sts.Name, i, headless.Name, sts.Namespace, port(c, "http")))
	}
	if flags["join"] != strings.Join(want, ",") {
		t.Errorf("--join=%s, want %s", flags["join"], strings.Join(want, ","))
	}
	// Identity by name: each pod advertises its own stable DNS name, so a
	// pod rescheduled onto another IP keeps its place in Raft.
	podName := func(p int) string {
		return fmt.Sprintf("$(POD_NAME).%s.%s.svc.cluster.local:%d", headless.Name, sts.Namespace, p)
	}
	for flag, p := range map[string]int32{"raft-advertise": port(c, "raft"), "http-advertise": port(c, "http")} {
		if flags[flag] != podName(int(p)) {
			t.Errorf("--%s=%s, want %s (the pod's name in the headless Service)", flag, flags[flag], podName(int(p)))
		}
	}
	if !usesPodName(c) {
		t.Error("the advertised names use $(POD_NAME): the container needs POD_NAME from metadata.name")
	}

	// Ports: the flags, the container's ports and every Service agree.
	if p := flagPort(t, "http", flags["http"]); p != port(c, "http") || p == 0 {
		t.Errorf("--http port %d, container port http %d", p, port(c, "http"))
	}
	if p := flagPort(t, "raft", flags["raft"]); p != port(c, "raft") || p == 0 {
		t.Errorf("--raft port %d, container port raft %d", p, port(c, "raft"))
	}
	if p := flagPort(t, "metrics-listen", flags["metrics-listen"]); p != port(c, "metrics") {
		t.Errorf("--metrics-listen port %d, container port metrics %d", p, port(c, "metrics"))
	}
	for _, s := range m.services {
		if s.Namespace != sts.Namespace || !selects(s.Spec.Selector, labels) {
			continue
		}
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.StrVal == "" || port(c, sp.TargetPort.StrVal) != sp.Port {
				t.Errorf("Service %s port %s: targetPort %q, want a named container port equal to %d", s.Name, sp.Name, sp.TargetPort.String(), sp.Port)
			}
		}
	}
	if len(m.services) < 2 {
		t.Errorf("want a headless Service and one for the API")
	}

	// TLS everywhere, never --insecure-raft.
	if _, ok := flags["insecure-raft"]; ok {
		t.Error("--insecure-raft in the Kubernetes manifests: Raft must use TLS")
	}
	for _, f := range []string{"tls-ca", "tls-cert", "tls-key", "token-file"} {
		if flags[f] == "" {
			t.Errorf("no --%s", f)
		}
	}

	// Probes: readiness on a real endpoint (checked against a running
	// server), over HTTPS as the API serves it with --tls-*.
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
		t.Fatal("servers need an HTTP readiness probe")
	}
	rp := c.ReadinessProbe.HTTPGet
	if rp.Port.StrVal != "http" || rp.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("readiness probe on port %s scheme %s, want http over HTTPS", rp.Port.String(), rp.Scheme)
	}
	if code := probeServer(t, rp.Path); code != http.StatusOK {
		t.Errorf("readiness probe GET %s: a server with a leader answers %d", rp.Path, code)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.TCPSocket == nil || p.TCPSocket.Port.StrVal != "http" {
			t.Errorf("%s probe %+v: want a TCP check of port http (a server waiting for a leader is alive)", name, p)
		}
	}
	checkResources(t, c, true)

	// Spreading: one server per node.
	aff := pod.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Fatal("servers need a required pod anti-affinity")
	}
	term := aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
	if term.TopologyKey != "kubernetes.io/hostname" || term.LabelSelector == nil || !selects(term.LabelSelector.MatchLabels, labels) {
		t.Errorf("anti-affinity %+v: want the servers' labels per kubernetes.io/hostname", term)
	}

	// The PDB keeps a quorum and selects the servers.
	pdb := m.pdbs[0]
	if pdb.Namespace != sts.Namespace || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || !selects(pdb.Spec.Selector.MatchLabels, labels) {
		t.Errorf("PodDisruptionBudget %s: want minAvailable 2 (a quorum of 3) over the servers", pdb.Name)
	}

	// Data on the claim template, at the directory --data-dir is under.
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	claim := sts.Spec.VolumeClaimTemplates[0].Name
	mounted := false
	for _, vm := range c.VolumeMounts {
		if vm.Name == claim && strings.HasPrefix(flags["data-dir"], vm.MountPath+"/") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("--data-dir=%s is not on the volume claim %s", flags["data-dir"], claim)
	}

	// Restricted Pod Security: the namespace enforces it and the pod meets it.
	ns := namespace(m, sts.Namespace)
	if ns == nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s: want pod-security.kubernetes.io/enforce=restricted", sts.Namespace)
	}
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("server pod: want runAsNonRoot and seccomp RuntimeDefault")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("server container: want allowPrivilegeEscalation false, capabilities drop ALL, readOnlyRootFilesystem")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("servers need no Kubernetes API token: automountServiceAccountToken false")
	}
}

// usesPodName reports whether c sets POD_NAME from the pod's own name.
func usesPodName(c corev1.Container) bool {
	for _, e := range c.Env {
		if e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			return true
		}
	}
	return false
}
