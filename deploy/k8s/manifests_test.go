// Package k8s_test decodes every manifest of deploy/k8s strictly into the
// Kubernetes API types (a misspelt or misplaced field fails) and checks
// what must hold between them and the ark binary: the image, the flags
// (each one a real flag of `ark server` / `ark agent`), ports, probes that
// hit real endpoints of a running server, resources, replicas, spreading
// and security contexts.
package k8s_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// manifests are the decoded objects of deploy/k8s, by kind.
type manifests struct {
	namespaces   []*corev1.Namespace
	services     []*corev1.Service
	configMaps   []*corev1.ConfigMap
	secrets      []*corev1.Secret
	statefulSets []*appsv1.StatefulSet
	daemonSets   []*appsv1.DaemonSet
	pdbs         []*policyv1.PodDisruptionBudget
}

// load reads every *.yaml file and decodes each document strictly.
func load(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			where := fmt.Sprintf("%s, document %d", f, i+1)
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if string(js) == "null" {
				continue // comments only
			}
			var tm metav1.TypeMeta
			if err := json.Unmarshal(js, &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				o := &corev1.Namespace{}
				m.namespaces, obj = append(m.namespaces, o), o
			case "v1 Service":
				o := &corev1.Service{}
				m.services, obj = append(m.services, o), o
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				m.configMaps, obj = append(m.configMaps, o), o
			case "v1 Secret":
				o := &corev1.Secret{}
				m.secrets, obj = append(m.secrets, o), o
			case "apps/v1 StatefulSet":
				o := &appsv1.StatefulSet{}
				m.statefulSets, obj = append(m.statefulSets, o), o
			case "apps/v1 DaemonSet":
				o := &appsv1.DaemonSet{}
				m.daemonSets, obj = append(m.daemonSets, o), o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				m.pdbs, obj = append(m.pdbs, o), o
			default:
				t.Fatalf("%s: unexpected %s %s (add it to this test, with its checks)", where, tm.APIVersion, tm.Kind)
			}
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(obj); err != nil {
				t.Fatalf("%s (%s): %v", where, tm.Kind, err)
			}
		}
	}
	return m
}

// TestStrictDecodeRejectsUnknownFields: the decoding above is strict.
func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	js, err := yaml.YAMLToJSON([]byte("apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  replica: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&appsv1.StatefulSet{}); err == nil || !strings.Contains(err.Error(), `unknown field "replica"`) {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

func TestManifests(t *testing.T) {
	m := load(t)
	if len(m.statefulSets) != 1 || len(m.daemonSets) != 1 || len(m.pdbs) != 1 {
		t.Fatalf("want one server StatefulSet, one agent DaemonSet and one PDB; got %d, %d, %d", len(m.statefulSets), len(m.daemonSets), len(m.pdbs))
	}
	sts, ds := m.statefulSets[0], m.daemonSets[0]
	server := onlyContainer(t, "StatefulSet "+sts.Name, sts.Spec.Template.Spec)
	agent := onlyContainer(t, "DaemonSet "+ds.Name, ds.Spec.Template.Spec)
	serverFlags, agentFlags := arkFlags(t, server.Args, "server"), arkFlags(t, agent.Args, "agent")

	t.Run("image", func(t *testing.T) {
		for _, c := range []corev1.Container{server, agent} {
			repo, tag, ok := strings.Cut(c.Image, ":")
			if !ok || repo != "ark" || tag == "" || tag == "latest" {
				t.Errorf("container %s: image %q, want ark:VERSION (make image IMAGE_VERSION=VERSION tags it; not latest)", c.Name, c.Image)
			}
			if c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("container %s: imagePullPolicy %q, want IfNotPresent", c.Name, c.ImagePullPolicy)
			}
		}
		if server.Image != agent.Image {
			t.Errorf("servers run %s, agents %s: one image for both", server.Image, agent.Image)
		}
	})

	t.Run("flags are ark's", func(t *testing.T) {
		checkFlagsExist(t, "server", serverFlags)
		checkFlagsExist(t, "agent", agentFlags)
	})

	t.Run("servers", func(t *testing.T) { checkServers(t, m, sts, server, serverFlags) })
	t.Run("agents", func(t *testing.T) { checkAgents(t, m, ds, agent, agentFlags, sts) })
	t.Run("secrets and configmaps", func(t *testing.T) {
		checkVolumes(t, m, sts.Namespace, sts.Spec.Template.Spec, server)
		checkVolumes(t, m, ds.Namespace, ds.Spec.Template.Spec, agent)
	})
}

func onlyContainer(t *testing.T, what string, pod corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", what, len(pod.Containers))
	}
	return pod.Containers[0]
}

// arkFlags parses ark's arguments (the subcommand, then --name=value
// flags) into a map; a flag given twice or without = fails.
func arkFlags(t *testing.T, args []string, sub string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != sub {
		t.Fatalf("args %q: want %q first", args, sub)
	}
	out := map[string]string{}
	for _, a := range args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Fatalf("ark %s argument %q: write flags as --name=value", sub, a)
		}
		if _, dup := out[name]; dup {
			t.Fatalf("ark %s: --%s given twice", sub, name)
		}
		out[name] = value
	}
	return out
}

// checkFlagsExist compares the flags with `ark SUB --help` of the binary
// built from this tree.
func checkFlagsExist(t *testing.T, sub string, flags map[string]string) {
	help := arkHelp(t, sub)
	for name := range flags {
		if !regexp.MustCompile(`(?m)^\s+(-\w, )?--` + regexp.QuoteMeta(name) + `\b`).MatchString(help) {
			t.Errorf("ark %s has no flag --%s", sub, name)
		}
	}
}

// podLabels checks a selector matches a pod template's labels.
func selects(sel map[string]string, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func port(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// flagPort is the port of a HOST:PORT flag value.
func flagPort(t *testing.T, flag, v string) int32 {
	t.Helper()
	i := strings.LastIndex(v, ":")
	var p int32
	if i < 0 {
		t.Fatalf("--%s=%s has no port", flag, v)
	}
	if _, err := fmt.Sscan(v[i+1:], &p); err != nil {
		t.Fatalf("--%s=%s: port: %v", flag, v, err)
	}
	return p
}

func checkResources(t *testing.T, c corev1.Container, wantMemoryLimit bool) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("container %s: no %s request", c.Name, r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; wantMemoryLimit && !ok {
		t.Errorf("container %s: no memory limit", c.Name)
	}
	for r := range c.Resources.Requests {
		if strings.Contains(string(r), "gpu") {
			t.Errorf("container %s requests %s: the agent owns the node's GPUs, it does not take them from the device plugin", c.Name, r)
		}
	}
	for r := range c.Resources.Limits {
		if strings.Contains(string(r), "gpu") {
			t.Errorf("container %s limits %s", c.Name, r)
		}
	}
}

func namespace(m *manifests, name string) *corev1.Namespace {
	for _, n := range m.namespaces {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// checkVolumes: every Secret and ConfigMap a pod mounts is in the
// manifests, in the pod's namespace; every file a flag names lies under a
// mount, and is a key of the Secret or ConfigMap mounted there.
func checkVolumes(t *testing.T, m *manifests, ns string, pod corev1.PodSpec, c corev1.Container) {
	keys := map[string][]string{} // volume name -> keys
	for _, v := range pod.Volumes {
		switch {
		case v.Secret != nil:
			i := slices.IndexFunc(m.secrets, func(s *corev1.Secret) bool { return s.Name == v.Secret.SecretName && s.Namespace == ns })
			if i < 0 {
				t.Errorf("volume %s: no Secret %s/%s in the manifests", v.Name, ns, v.Secret.SecretName)
				continue
			}
			for k := range m.secrets[i].StringData {
				keys[v.Name] = append(keys[v.Name], k)
			}
			for k := range m.secrets[i].Data {
				keys[v.Name] = append(keys[v.Name], k)
			}
		case v.ConfigMap != nil:
			i := slices.IndexFunc(m.configMaps, func(cm *corev1.ConfigMap) bool { return cm.Name == v.ConfigMap.Name && cm.Namespace == ns })
			if i < 0 {
				t.Errorf("volume %s: no ConfigMap %s/%s in the manifests", v.Name, ns, v.ConfigMap.Name)
				continue
			}
			for k := range m.configMaps[i].Data {
				keys[v.Name] = append(keys[v.Name], k)
			}
		}
	}
	for _, a := range c.Args {
		_, val, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(val, "/etc/") {
			continue
		}
		found := false
		for _, vm := range c.VolumeMounts {
			rel, ok := strings.CutPrefix(val, vm.MountPath+"/")
			if !ok {
				continue
			}
			found = true
			ks, mounted := keys[vm.Name]
			if !mounted {
				t.Errorf("%s: %s is not a Secret or ConfigMap", a, vm.Name)
				continue
			}
			if strings.Contains(rel, "$(POD_NAME)") {
				// One key per pod of the StatefulSet.
				for i := range 3 {
					k := strings.ReplaceAll(rel, "$(POD_NAME)", fmt.Sprintf("ark-server-%d", i))
					if !slices.Contains(ks, k) {
						t.Errorf("%s: %s lacks key %s", a, vm.Name, k)
					}
				}
			} else if !slices.Contains(ks, rel) {
				t.Errorf("%s: %s lacks key %s (has %v)", a, vm.Name, rel, ks)
			}
		}
		if !found {
			t.Errorf("%s: no volume mounted at its directory", a)
		}
	}
}
