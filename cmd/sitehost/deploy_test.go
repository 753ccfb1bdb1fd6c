package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/config"
)

const deployDir = "../../deploy"

// serviceMonitor is the part of the Prometheus Operator's CRD the
// manifests use; unknown fields are errors, as for the built-in types.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifests are the objects of a rendered kustomization, by kind and name.
type manifests struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	ingresses       []*networkingv1.Ingress
	networkPolicies []*networkingv1.NetworkPolicy
	monitors        []*serviceMonitor
}

// decodeStrict decodes one YAML document into v; a field v's type does
// not have is an error.
func decodeStrict(doc []byte, v any) error {
	j, err := sigsyaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeManifests decodes every document of data into its Kubernetes type.
func decodeManifests(t *testing.T, name string, data []byte) manifests {
	t.Helper()
	m := manifests{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}}
	for i, doc := range docSep.Split(string(data), -1) {
		var tm metav1.TypeMeta
		if err := sigsyaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Errorf("%s[%d]: %v", name, i, err)
			continue
		}
		var v any
		switch tm.APIVersion + " " + tm.Kind {
		case " ":
			continue // comments only
		case "apps/v1 Deployment":
			v = &appsv1.Deployment{}
		case "v1 Service":
			v = &corev1.Service{}
		case "v1 ConfigMap":
			v = &corev1.ConfigMap{}
		case "v1 Namespace":
			v = &corev1.Namespace{}
		case "v1 ServiceAccount":
			v = &corev1.ServiceAccount{}
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			v, m.pdbs = p, append(m.pdbs, p)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			v, m.hpas = h, append(m.hpas, h)
		case "networking.k8s.io/v1 Ingress":
			g := &networkingv1.Ingress{}
			v, m.ingresses = g, append(m.ingresses, g)
		case "networking.k8s.io/v1 NetworkPolicy":
			n := &networkingv1.NetworkPolicy{}
			v, m.networkPolicies = n, append(m.networkPolicies, n)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			s := &serviceMonitor{}
			v, m.monitors = s, append(m.monitors, s)
		default:
			t.Errorf("%s[%d]: unexpected %s %s", name, i, tm.APIVersion, tm.Kind)
			continue
		}
		if err := decodeStrict([]byte(doc), v); err != nil {
			t.Errorf("%s[%d] (%s): %v", name, i, tm.Kind, err)
		}
		switch v := v.(type) {
		case *appsv1.Deployment:
			m.deployments[v.Name] = v
		case *corev1.Service:
			m.services[v.Name] = v
		case *corev1.ConfigMap:
			m.configMaps[v.Name] = v
		}
	}
	return m
}

// kustomize renders a kustomization with the kustomize library (what
// kubectl apply -k runs).
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// configEnvNames are the environment variables a config names: the values
// of every *_env key and the entries of secret_env lists.
func configEnvNames(t *testing.T, data []byte) []string {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(k, x)
			}
		case []any:
			for _, x := range v {
				walk(key, x)
			}
		case string:
			if strings.HasSuffix(key, "_env") {
				names = append(names, v)
			}
		}
	}
	walk("", doc)
	slices.Sort(names)
	return slices.Compact(names)
}

// validateConfig runs sitehost validate's own function on a config, with
// every variable it names set.
func validateConfig(t *testing.T, name string, data []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	getenv := func(string) string { return testToken } // long enough for a token, a secret or a key
	var out bytes.Buffer
	if err := cmdValidate([]string{"-c", p}, getenv, &out, &out); err != nil {
		t.Errorf("%s does not validate:\n%s", name, out.String())
	}
}

func selects(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return !s.Empty() && s.Matches(labels.Set(set))
}

func addrPort(addr string) int32 {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return int32(n)
}

// TestDeployManifests decodes every manifest under deploy/ strictly into
// the Kubernetes API types, renders the example overlay with kustomize and
// checks what refers to what: selectors, ports, probe paths, the serve
// command lines, the config and its environment.
func TestDeployManifests(t *testing.T) {
	// Every file, the overlay's patches included, decodes strictly.
	err := filepath.WalkDir(deployDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") || d.Name() == "kustomization.yaml" ||
			strings.Contains(p, "compose") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		decodeManifests(t, p, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kustomize(t, filepath.Join(deployDir, "base"))
	m := decodeManifests(t, "overlays/example", kustomize(t, filepath.Join(deployDir, "overlays", "example")))

	// The config: it validates as sitehost validate would, and its
	// listeners are the containers' ports.
	cm, ok := m.configMaps["sitehost-config"]
	if !ok {
		t.Fatal("no ConfigMap sitehost-config")
	}
	data := []byte(cm.Data["sites.yaml"])
	validateConfig(t, "the ConfigMap's sites.yaml", data)
	cfg, err := config.Parse("sites.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	envNames := configEnvNames(t, data)
	wantPorts := map[string]int32{"http": addrPort(cfg.Server.HTTP), "admin": addrPort(cfg.Server.Admin)}

	routes := adminRoutes(t)
	provided := map[string]bool{}
	roles := map[string]string{}
	for name, d := range m.deployments {
		pod := d.Spec.Template
		if !selects(t, d.Spec.Selector, pod.Labels) {
			t.Errorf("deployment %s: selector %v does not match its pods %v", name, d.Spec.Selector, pod.Labels)
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("deployment %s: %d containers, want 1", name, len(pod.Spec.Containers))
		}
		c := pod.Spec.Containers[0]
		if c.Image == "" || !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("deployment %s: image %q is not pinned by the overlay", name, c.Image)
		}
		// The command line parses with serve's own flags.
		if len(c.Args) == 0 || c.Args[0] != "serve" {
			t.Fatalf("deployment %s: args %q, want serve …", name, c.Args)
		}
		var stderr bytes.Buffer
		a, err := parseServeArgs(c.Args[1:], &stderr)
		if err != nil {
			t.Fatalf("deployment %s: args %q: %v %s", name, c.Args, err, stderr.String())
		}
		roles[name] = *a.role
		// -c is the ConfigMap, mounted as a directory so updates reach it.
		mounted := false
		for _, vm := range c.VolumeMounts {
			if vm.MountPath == path.Dir(*a.path) && vm.SubPath == "" {
				for _, v := range pod.Spec.Volumes {
					if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
						_, mounted = cm.Data[path.Base(*a.path)]
					}
				}
			}
		}
		if !mounted {
			t.Errorf("deployment %s: -c %s is not the ConfigMap's sites.yaml mounted as a directory", name, *a.path)
		}
		// Ports are the config's listeners, and a builder has no data plane.
		for _, p := range c.Ports {
			if want, ok := wantPorts[p.Name]; !ok || p.ContainerPort != want {
				t.Errorf("deployment %s: port %s %d, want one of the config's listeners %v", name, p.Name, p.ContainerPort, wantPorts)
			}
			if p.Name == "http" && *a.role == config.RoleBuilder {
				t.Errorf("deployment %s: a builder exposes the data plane", name)
			}
		}
		// Probes ask paths the admin listener serves, on its port.
		for what, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
			if pr == nil {
				if what != "startup" {
					t.Errorf("deployment %s: no %s probe", name, what)
				}
				continue
			}
			if pr.HTTPGet == nil || pr.HTTPGet.Port.String() != "admin" || !slices.Contains(routes, pr.HTTPGet.Path) {
				t.Errorf("deployment %s: %s probe %+v does not ask the admin listener for a path it serves (%v)", name, what, pr.HTTPGet, routes)
			}
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("deployment %s: readiness on %s, want /readyz", name, c.ReadinessProbe.HTTPGet.Path)
		}
		// Secrets come by reference, under names the config gives.
		for _, e := range c.Env {
			if !slices.Contains(envNames, e.Name) {
				t.Errorf("deployment %s: env %s is not named by the config (%v)", name, e.Name, envNames)
			}
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("deployment %s: env %s is not a secretKeyRef", name, e.Name)
			}
			provided[e.Name] = true
		}
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("deployment %s: the root file system is not read-only", name)
		}
		// The grace period covers preStop, the shutdown delay and the drain.
		grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
		var preStop time.Duration
		if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
			preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		}
		if need := preStop + cfg.Server.ShutdownDelay + drainTimeout; grace <= need {
			t.Errorf("deployment %s: terminationGracePeriodSeconds %v, want more than %v", name, grace, need)
		}
		switch *a.role {
		case config.RoleEdge:
			if preStop != cfg.Server.ShutdownDelay {
				t.Errorf("deployment %s: preStop sleep %v, want server.shutdown_delay %v", name, preStop, cfg.Server.ShutdownDelay)
			}
			if aff := pod.Spec.Affinity; aff == nil || aff.PodAntiAffinity == nil {
				t.Errorf("deployment %s: no pod anti-affinity", name)
			}
		case config.RoleBuilder:
			// Builders share the sites through leases: with two, one
			// dying or rolling hands its sites to the other.
			if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
				t.Errorf("deployment %s: want at least 2 builders sharing the sites", name)
			}
			if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
				t.Errorf("deployment %s: Recreate stops every builder at once; leases let them roll", name)
			}
		}
	}
	for _, n := range envNames {
		if !provided[n] {
			t.Errorf("the config names env %s, but no deployment sets it", n)
		}
	}
	if got := slices.Collect(maps.Values(roles)); !slices.Contains(got, "edge") || !slices.Contains(got, "builder") {
		t.Errorf("roles %v: want an edge and a builder deployment", roles)
	}

	// Services select one deployment's pods, on ports they have.
	svcOf := map[string]string{} // service → deployment
	for name, s := range m.services {
		for dn, d := range m.deployments {
			if selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, d.Spec.Template.Labels) {
				if svcOf[name] != "" {
					t.Errorf("service %s selects %s and %s", name, svcOf[name], dn)
				}
				svcOf[name] = dn
			}
		}
		d, ok := m.deployments[svcOf[name]]
		if !ok {
			t.Errorf("service %s selects no deployment", name)
			continue
		}
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.String() }) {
				t.Errorf("service %s: port %s targets %s, which %s does not have", name, p.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
	servicePort := func(svc, port string) bool {
		s, ok := m.services[svc]
		return ok && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == port })
	}
	for _, ing := range m.ingresses {
		backends := []*networkingv1.IngressBackend{ing.Spec.DefaultBackend}
		for _, r := range ing.Spec.Rules {
			for i := range r.HTTP.Paths {
				backends = append(backends, &r.HTTP.Paths[i].Backend)
			}
		}
		for _, b := range backends {
			if b == nil || b.Service == nil || !servicePort(b.Service.Name, b.Service.Port.Name) || roles[svcOf[b.Service.Name]] != config.RoleEdge {
				t.Errorf("ingress %s: backend %+v is not an edge service's port", ing.Name, b)
			}
		}
		hosts := map[string]bool{}
		for _, r := range ing.Spec.Rules {
			hosts[r.Host] = true
		}
		if !hosts[cfg.Server.ControlHost] || !hosts["*."+cfg.Server.PreviewDomain] {
			t.Errorf("ingress %s: hosts %v miss the control host or the previews", ing.Name, hosts)
		}
	}
	for _, p := range m.pdbs {
		if d := m.deployments["sitehost-edge"]; d == nil || !selects(t, p.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("pdb %s does not select the edges", p.Name)
		}
	}
	for _, h := range m.hpas {
		if ref := h.Spec.ScaleTargetRef; ref.Kind != "Deployment" || roles[ref.Name] != config.RoleEdge {
			t.Errorf("hpa %s scales %s %s, want the edge deployment", h.Name, ref.Kind, ref.Name)
		}
	}
	for _, np := range m.networkPolicies {
		if d := m.deployments["sitehost-builder"]; d == nil || !selects(t, &np.Spec.PodSelector, d.Spec.Template.Labels) {
			t.Errorf("networkpolicy %s does not select the builder", np.Name)
		}
	}
	if len(m.monitors) == 0 {
		t.Error("no ServiceMonitor")
	}
	for _, mon := range m.monitors {
		n := 0
		for name, s := range m.services {
			if !selects(t, &mon.Spec.Selector, s.Labels) {
				continue
			}
			n++
			for _, e := range mon.Spec.Endpoints {
				if !servicePort(name, e.Port) || !slices.Contains(routes, e.Path) {
					t.Errorf("servicemonitor %s: endpoint %s%s is not on service %s", mon.Name, e.Port, e.Path, name)
				}
			}
		}
		if n != len(m.services) {
			t.Errorf("servicemonitor %s selects %d of %d services", mon.Name, n, len(m.services))
		}
	}

	// compose and systemd: their configs validate, their command lines parse.
	compose, err := os.ReadFile(filepath.Join(deployDir, "compose", "sites.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	validateConfig(t, "deploy/compose/sites.yaml", compose)
	var cf struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	composeFile, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(composeFile, &cf); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"edge", "builder"} {
		cmd := cf.Services[svc].Command
		if len(cmd) == 0 || cmd[0] != "serve" {
			t.Fatalf("compose %s: command %q", svc, cmd)
		}
		if a, err := parseServeArgs(cmd[1:], io.Discard); err != nil || *a.role != svc {
			t.Errorf("compose %s: command %q: role %v, %v", svc, cmd, a.role, err)
		}
	}
	unit, err := os.Open(filepath.Join(deployDir, "systemd", "sitehost.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer unit.Close()
	found := false
	for sc := bufio.NewScanner(unit); sc.Scan(); {
		if cmd, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			f := strings.Fields(cmd)
			if len(f) < 2 || f[1] != "serve" {
				t.Fatalf("systemd ExecStart %q", cmd)
			}
			if _, err := parseServeArgs(f[2:], io.Discard); err != nil {
				t.Errorf("systemd ExecStart %q: %v", cmd, err)
			}
			found = true
		}
	}
	if !found {
		t.Error("systemd unit: no ExecStart")
	}
}

// adminRoutes are the GET paths a real server's admin listener serves, each
// asked once to be sure.
func adminRoutes(t *testing.T) []string {
	t.Helper()
	srv := startServer(t, testConfig(t, t.TempDir(), ""), nil)
	var out []string
	for _, r := range srv.admin.(*admin.Handler).Routes() {
		if (r.Method == "" || r.Method == http.MethodGet) && !strings.Contains(r.Path, "{") {
			out = append(out, r.Path)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + srv.adminLn.Addr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || !slices.Contains(out, p) {
			t.Errorf("the admin listener does not serve %s (%d; routes %v)", p, resp.StatusCode, out)
		}
	}
	return out
}
