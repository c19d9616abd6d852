package charts

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestGeneratedTemplatesAreUpToDate(t *testing.T) {
	files, err := Generate(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Errorf("%s is missing: run `make helm-crds` (%v)", path, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what config/ generates: run `make helm-crds`", path)
		}
	}
	stale, err := filepath.Glob(filepath.Join(repoRoot, ChartDir, "templates", crdTemplatePrefix+"*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		rel, _ := filepath.Rel(repoRoot, p)
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			t.Errorf("%s has no source CRD in %s any more: run `make helm-crds`", rel, CRDSourceDir)
		}
	}
}

// TestChartCRDsAreTheControllerGenCRDs renders the chart and compares each CRD it
// installs with the one in config/crd/bases: the same names and spec, plus only the
// chart's labels and keep annotation.
func TestChartCRDsAreTheControllerGenCRDs(t *testing.T) {
	r := mustRender(t, nil)
	entries, err := os.ReadDir(filepath.Join(repoRoot, CRDSourceDir))
	if err != nil {
		t.Fatal(err)
	}
	var sources int
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		sources++
		want := decodeFile(t, filepath.Join(CRDSourceDir, e.Name()))[0]
		got := r.must(t, "CustomResourceDefinition", want.GetName())
		if !reflect.DeepEqual(got.Object["spec"], want.Object["spec"]) {
			gb, _ := yaml.Marshal(got.Object["spec"])
			wb, _ := yaml.Marshal(want.Object["spec"])
			t.Errorf("CRD %s: the chart's spec differs from %s (run `make helm-crds`)\n--- chart\n%s\n--- config\n%s",
				want.GetName(), e.Name(), gb, wb)
		}
		if got.GetAPIVersion() != want.GetAPIVersion() {
			t.Errorf("CRD %s: apiVersion %s, want %s", want.GetName(), got.GetAPIVersion(), want.GetAPIVersion())
		}
		for k, v := range want.GetAnnotations() {
			if got.GetAnnotations()[k] != v {
				t.Errorf("CRD %s: annotation %s=%q, want %q", want.GetName(), k, got.GetAnnotations()[k], v)
			}
		}
		if got.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s: by default (crds.keep) it must carry helm.sh/resource-policy=keep, has %v", want.GetName(), got.GetAnnotations())
		}
		if got.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
			t.Errorf("CRD %s: missing the release labels: %v", want.GetName(), got.GetLabels())
		}
	}
	if n := r.kinds()["CustomResourceDefinition"]; n != sources || n == 0 {
		t.Errorf("the chart renders %d CRDs, config/crd/bases holds %d", n, sources)
	}
}

func TestCRDValues(t *testing.T) {
	t.Run("crds.enabled=false installs no CRD", func(t *testing.T) {
		r := mustRender(t, map[string]any{"crds": map[string]any{"enabled": false}})
		if n := r.kinds()["CustomResourceDefinition"]; n != 0 {
			t.Errorf("rendered %d CRDs", n)
		}
		if !strings.Contains(r.notes, "make install") {
			t.Errorf("NOTES should tell the user to install the CRD themselves:\n%s", r.notes)
		}
	})
	t.Run("crds.keep=false lets helm uninstall delete the CRD", func(t *testing.T) {
		r := mustRender(t, map[string]any{"crds": map[string]any{"keep": false}})
		for _, o := range r.objects {
			if o.GetKind() == "CustomResourceDefinition" {
				if _, ok := o.GetAnnotations()["helm.sh/resource-policy"]; ok {
					t.Errorf("CRD %s still has helm.sh/resource-policy", o.GetName())
				}
				return
			}
		}
		t.Error("no CRD rendered")
	})
}

func TestDefaultValues(t *testing.T) {
	r := mustRender(t, nil)

	wantKinds := map[string]int{
		"ServiceAccount":     1,
		"ClusterRole":        1, // the manager's rules
		"ClusterRoleBinding": 1,
		"Deployment":         1,
		"Service":            1,
	}
	got := r.kinds()
	for kind, n := range wantKinds {
		if got[kind] != n {
			t.Errorf("%d %s objects, want %d; rendered: %v", got[kind], kind, n, r.names())
		}
	}
	for _, kind := range []string{"Role", "RoleBinding", "ServiceMonitor", "Namespace", "PodDisruptionBudget"} {
		if got[kind] != 0 {
			t.Errorf("by default no %s should be rendered; rendered: %v", kind, r.names())
		}
	}
	for _, o := range r.objects {
		if o.GetLabels()["app.kubernetes.io/instance"] != releaseName {
			t.Errorf("%s %s lacks the release labels: %v", o.GetKind(), o.GetName(), o.GetLabels())
		}
		if o.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(o.GetKind(), "Cluster") && o.GetNamespace() != releaseNamespace {
			t.Errorf("%s %s is in namespace %q, want the release namespace", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}

	d := r.deployment(t)
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("without leader election the strategy must be Recreate, is %q", d.Spec.Strategy.Type)
	}
	c := manager(t, d)
	if c.Image != "ghcr.io/kafkasub/kafkasub:"+chartAppVersion(t) {
		t.Errorf("image %q, want the repository with the chart's appVersion %s", c.Image, chartAppVersion(t))
	}
	if !slices.Equal(c.Command, []string{"/kafkasub"}) || len(c.Args) == 0 || c.Args[0] != "manager" {
		t.Errorf("command %v args %v, want /kafkasub manager ...", c.Command, c.Args)
	}
	for _, want := range []string{
		"--leader-elect=false",
		"--health-probe-bind-address=:8081",
		"--metrics-bind-address=:8080",
		"--consumer-image=ghcr.io/kafkasub/kafkasub:" + chartAppVersion(t),
		"--zap-log-level=info",
		"--zap-encoder=json",
	} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %v lack %s", c.Args, want)
		}
	}
	if hasArgPrefix(c.Args, "--watch-namespaces") {
		t.Errorf("by default every namespace is watched, args: %v", c.Args)
	}
	assertRestricted(t, d)
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("the manager needs memory requests and limits by default: %+v", c.Resources)
	}

	svc := r.must(t, "Service", releaseName+"-metrics")
	var s corev1.Service
	toTyped(t, svc, &s)
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8080 || s.Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("metrics Service ports %+v", s.Spec.Ports)
	}
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the metrics Service selects %s=%s, which the pods lack", k, v)
		}
	}

	var binding rbacv1.ClusterRoleBinding
	toTyped(t, r.must(t, "ClusterRoleBinding", releaseName+"-manager"), &binding)
	if binding.RoleRef.Name != releaseName+"-manager" || len(binding.Subjects) != 1 ||
		binding.Subjects[0].Name != d.Spec.Template.Spec.ServiceAccountName || binding.Subjects[0].Namespace != releaseNamespace {
		t.Errorf("manager ClusterRoleBinding %+v does not bind the operator's ServiceAccount %s", binding, d.Spec.Template.Spec.ServiceAccountName)
	}
	assertManagerRules(t, r.must(t, "ClusterRole", releaseName+"-manager"))

	for _, want := range []string{"rollout status deployment/" + releaseName, "kind: KafkaSubscription", "kubectl create secret", "every namespace"} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, r.notes)
		}
	}
}

func TestValueVariants(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, r *rendered)
	}{
		{
			name:   "More than one replica turns leader election on with its Role in the release namespace, and adds a PodDisruptionBudget.",
			values: map[string]any{"replicaCount": 3},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t)
				if !slices.Contains(manager(t, d).Args, "--leader-elect=true") {
					t.Errorf("args %v lack --leader-elect=true", manager(t, d).Args)
				}
				if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
					t.Error("with leader election the Deployment should roll, not Recreate")
				}
				var pdb policyv1.PodDisruptionBudget
				toTyped(t, r.must(t, "PodDisruptionBudget", releaseName), &pdb)
				if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
					t.Errorf("PodDisruptionBudget minAvailable %v, want 1", pdb.Spec.MinAvailable)
				}
				for k, v := range pdb.Spec.Selector.MatchLabels {
					if d.Spec.Template.Labels[k] != v {
						t.Errorf("the PodDisruptionBudget selects %s=%s, which the pods lack", k, v)
					}
				}
				role := r.must(t, "Role", releaseName+"-leader-election")
				if role.GetNamespace() != releaseNamespace {
					t.Errorf("leader election Role in %q", role.GetNamespace())
				}
				var rb rbacv1.RoleBinding
				toTyped(t, r.must(t, "RoleBinding", releaseName+"-leader-election"), &rb)
				if rb.RoleRef.Name != role.GetName() {
					t.Errorf("leader election RoleBinding refers to %q", rb.RoleRef.Name)
				}
			},
		},
		{
			name:   "podDisruptionBudget.enabled=false leaves the PodDisruptionBudget out.",
			values: map[string]any{"replicaCount": 2, "podDisruptionBudget": map[string]any{"enabled": false}},
			check: func(t *testing.T, r *rendered) {
				if n := r.kinds()["PodDisruptionBudget"]; n != 0 {
					t.Errorf("%d PodDisruptionBudgets rendered", n)
				}
			},
		},
		{
			name:   "leaderElection.enabled turns it on for one replica.",
			values: map[string]any{"leaderElection": map[string]any{"enabled": true}},
			check: func(t *testing.T, r *rendered) {
				if !slices.Contains(manager(t, r.deployment(t)).Args, "--leader-elect=true") {
					t.Error("leader election is off")
				}
				r.must(t, "Role", releaseName+"-leader-election")
			},
		},
		{
			name:   "watchNamespaces grants the manager rules per namespace instead of cluster-wide.",
			values: map[string]any{"watchNamespaces": []any{"team-a", "team-b"}},
			check: func(t *testing.T, r *rendered) {
				if r.get("ClusterRole", releaseName+"-manager") != nil || r.get("ClusterRoleBinding", releaseName+"-manager") != nil {
					t.Errorf("a cluster-wide manager role is rendered for a namespaced install: %v", r.names())
				}
				var roles []string
				for _, o := range r.objects {
					if o.GetKind() == "Role" && o.GetName() == releaseName+"-manager" {
						roles = append(roles, o.GetNamespace())
						assertManagerRules(t, o)
					}
					if o.GetKind() == "RoleBinding" && o.GetName() == releaseName+"-manager" {
						var rb rbacv1.RoleBinding
						toTyped(t, o, &rb)
						if rb.RoleRef.Kind != "Role" || rb.Subjects[0].Namespace != releaseNamespace {
							t.Errorf("RoleBinding in %s: %+v", o.GetNamespace(), rb)
						}
					}
				}
				if !slices.Equal(roles, []string{"team-a", "team-b"}) {
					t.Errorf("manager Roles in %v, want team-a and team-b", roles)
				}
				if !slices.Contains(manager(t, r.deployment(t)).Args, "--watch-namespaces=team-a,team-b") {
					t.Errorf("args %v lack --watch-namespaces=team-a,team-b", manager(t, r.deployment(t)).Args)
				}
				if !strings.Contains(r.notes, "team-a, team-b") {
					t.Errorf("NOTES should name the watched namespaces:\n%s", r.notes)
				}
			},
		},
		{
			name:   "metrics.enabled=false removes the Service, the metrics RBAC and the port.",
			values: map[string]any{"metrics": map[string]any{"enabled": false, "serviceMonitor": map[string]any{"enabled": true}}},
			check: func(t *testing.T, r *rendered) {
				for _, kind := range []string{"Service", "ServiceMonitor", "ClusterRoleBinding"} {
					for _, o := range r.objects {
						if o.GetKind() == kind && strings.Contains(o.GetName(), "metrics") || o.GetKind() == "ServiceMonitor" {
							t.Errorf("%s %s rendered with metrics disabled", o.GetKind(), o.GetName())
						}
					}
				}
				c := manager(t, r.deployment(t))
				if !slices.Contains(c.Args, "--metrics-bind-address=0") {
					t.Errorf("args %v should turn the metrics server off", c.Args)
				}
				for _, p := range c.Ports {
					if p.Name == "metrics" {
						t.Error("the metrics port is still declared")
					}
				}
			},
		},
		{
			name: "metrics.serviceMonitor.enabled renders a ServiceMonitor selecting the metrics Service.",
			values: map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{
				"enabled": true, "labels": map[string]any{"release": "prometheus"}, "interval": "15s",
			}}},
			check: func(t *testing.T, r *rendered) {
				sm := r.must(t, "ServiceMonitor", releaseName)
				if sm.GetLabels()["release"] != "prometheus" {
					t.Errorf("ServiceMonitor labels %v lack release=prometheus", sm.GetLabels())
				}
				sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
				svc := r.must(t, "Service", releaseName+"-metrics")
				for k, v := range sel {
					if svc.GetLabels()[k] != v {
						t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service lacks", k, v)
					}
				}
				eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
				if len(eps) != 1 || eps[0].(map[string]any)["interval"] != "15s" || eps[0].(map[string]any)["port"] != "metrics" {
					t.Errorf("endpoints %v", eps)
				}
			},
		},
		{
			name: "Image tag, digest, pull secrets and the consumer image are configurable.",
			values: map[string]any{
				"image": map[string]any{
					"repository": "registry.example.com/kafkasub",
					"digest":     "sha256:" + strings.Repeat("ab", 32),
					"pullPolicy": "Always",
				},
				"imagePullSecrets": []any{map[string]any{"name": "regcred"}},
				"consumerImage":    "registry.example.com/shop-consumers:1.2.3",
			},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t)
				c := manager(t, d)
				if c.Image != "registry.example.com/kafkasub@sha256:"+strings.Repeat("ab", 32) || c.ImagePullPolicy != corev1.PullAlways {
					t.Errorf("image %q policy %q", c.Image, c.ImagePullPolicy)
				}
				if !slices.Contains(c.Args, "--consumer-image=registry.example.com/shop-consumers:1.2.3") {
					t.Errorf("args %v lack the consumer image", c.Args)
				}
				if len(d.Spec.Template.Spec.ImagePullSecrets) != 1 || d.Spec.Template.Spec.ImagePullSecrets[0].Name != "regcred" {
					t.Errorf("imagePullSecrets %v", d.Spec.Template.Spec.ImagePullSecrets)
				}
			},
		},
		{
			name: "An existing ServiceAccount is used when serviceAccount.create is false.",
			values: map[string]any{
				"serviceAccount": map[string]any{"create": false, "name": "platform-operator"},
			},
			check: func(t *testing.T, r *rendered) {
				if r.kinds()["ServiceAccount"] != 0 {
					t.Error("a ServiceAccount was created")
				}
				if sa := r.deployment(t).Spec.Template.Spec.ServiceAccountName; sa != "platform-operator" {
					t.Errorf("serviceAccountName %q", sa)
				}
				var b rbacv1.ClusterRoleBinding
				toTyped(t, r.must(t, "ClusterRoleBinding", releaseName+"-manager"), &b)
				if b.Subjects[0].Name != "platform-operator" {
					t.Errorf("the manager role is bound to %q", b.Subjects[0].Name)
				}
			},
		},
		{
			name: "Placement, resources, log level and extra args reach the pod.",
			values: map[string]any{
				"nodeSelector":     map[string]any{"kubernetes.io/os": "linux"},
				"tolerations":      []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}},
				"affinity":         map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "In", "values": []any{"a"}}}}}}}},
				"resources":        map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}, "limits": map[string]any{"memory": "512Mi"}},
				"logLevel":         "debug",
				"extraArgs":        []any{"--max-concurrent-reconciles=4"},
				"podAnnotations":   map[string]any{"example.com/team": "platform"},
				"fullnameOverride": "ops",
			},
			check: func(t *testing.T, r *rendered) {
				var d appsv1.Deployment
				toTyped(t, r.must(t, "Deployment", "ops"), &d)
				spec := d.Spec.Template.Spec
				if spec.NodeSelector["kubernetes.io/os"] != "linux" || len(spec.Tolerations) != 1 || spec.Affinity == nil || spec.Affinity.NodeAffinity == nil {
					t.Errorf("placement not applied: %v %v %v", spec.NodeSelector, spec.Tolerations, spec.Affinity)
				}
				c := manager(t, &d)
				if c.Resources.Limits.Memory().String() != "512Mi" || c.Resources.Requests.Cpu().String() != "100m" {
					t.Errorf("resources %+v", c.Resources)
				}
				if !slices.Contains(c.Args, "--zap-log-level=debug") || c.Args[len(c.Args)-1] != "--max-concurrent-reconciles=4" {
					t.Errorf("args %v", c.Args)
				}
				if d.Spec.Template.Annotations["example.com/team"] != "platform" {
					t.Errorf("pod annotations %v", d.Spec.Template.Annotations)
				}
				r.must(t, "Service", "ops-metrics")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustRender(t, tt.values))
		})
	}
}

// TestSchemaRejectsMistakes shows that values.schema.json turns a typo or a wrong type
// into an install error that names the offending key.
func TestSchemaRejectsMistakes(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"A misspelt top-level key fails.", map[string]any{"replicaCont": 2}, "replicaCont"},
		{"A misspelt nested key fails.", map[string]any{"image": map[string]any{"tagg": "v1"}}, "tagg"},
		{"An unknown pull policy fails.", map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}, "pullPolicy"},
		{"A negative replica count fails.", map[string]any{"replicaCount": -1}, "replicaCount"},
		{"A string where a boolean belongs fails.", map[string]any{"crds": map[string]any{"keep": "yes"}}, "keep"},
		{"An invalid namespace name fails.", map[string]any{"watchNamespaces": []any{"Team_A"}}, "watchNamespaces"},
		{"An unknown log level fails.", map[string]any{"logLevel": "verbose"}, "logLevel"},
		{"A misspelt ServiceMonitor key fails.", map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enable": true}}}, "enable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderChart(t, tt.values)
			if err == nil {
				t.Fatalf("values %v were accepted", tt.values)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("the error does not name %q: %v", tt.want, err)
			}
		})
	}
}

// TestValuesAreDocumented checks that every key of values.yaml is preceded by a comment,
// and that the schema describes every key (additionalProperties false everywhere the
// chart defines the keys).
func TestValuesAreDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ChartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	documented := false
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(trimmed, "#"):
			documented = true
		case trimmed == "":
			documented = false
		case strings.HasPrefix(trimmed, "- "):
			// a list item of a documented key
		default:
			key, _, _ := strings.Cut(trimmed, ":")
			// A key that opens a block documents its children itself.
			opensBlock := strings.HasSuffix(trimmed, ":")
			if !documented && !opensBlock && !isChildOfDocumented(lines, i) {
				t.Errorf("values.yaml line %d: key %q has no comment", i+1, key)
			}
			documented = false
		}
	}

	var schema map[string]any
	sb, err := os.ReadFile(filepath.Join(repoRoot, ChartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(sb, &schema); err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	checkSchemaCovers(t, "", values, schema)
}

// isChildOfDocumented reports whether line i sits under an ancestor key that has a
// comment directly above it (for example cpu: under requests: under resources:).
func isChildOfDocumented(lines []string, i int) bool {
	indentOf := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	indent := indentOf(lines[i])
	for j := i - 1; j >= 0; j-- {
		t := strings.TrimSpace(lines[j])
		if t == "" || strings.HasPrefix(t, "#") || indentOf(lines[j]) >= indent {
			continue
		}
		// lines[j] is the parent key.
		if j > 0 && strings.HasPrefix(strings.TrimSpace(lines[j-1]), "#") {
			return true
		}
		return isChildOfDocumented(lines, j)
	}
	return false
}

func checkSchemaCovers(t *testing.T, path string, values map[string]any, schema map[string]any) {
	t.Helper()
	if schema["additionalProperties"] != false {
		t.Errorf("values.schema.json: %q must set additionalProperties: false", "."+path)
	}
	props, _ := schema["properties"].(map[string]any)
	for k, v := range values {
		p, ok := props[k].(map[string]any)
		if !ok {
			t.Errorf("values.schema.json does not describe %s", path+k)
			continue
		}
		if sub, isMap := v.(map[string]any); isMap && p["properties"] != nil {
			checkSchemaCovers(t, path+k+".", sub, p)
		}
	}
}

// assertManagerRules checks that a rendered (Cluster)Role grants exactly the rules
// controller-gen wrote to config/rbac/role.yaml.
func assertManagerRules(t *testing.T, role *unstructured.Unstructured) {
	t.Helper()
	want := decodeFile(t, RoleSourceFile)[0]
	if !reflect.DeepEqual(role.Object["rules"], want.Object["rules"]) {
		t.Errorf("%s %s/%s: rules differ from %s (run `make helm-crds`)", role.GetKind(), role.GetNamespace(), role.GetName(), RoleSourceFile)
	}
}

// assertRestricted checks the pod against the restricted Pod Security Standard's
// requirements the chart controls.
func assertRestricted(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	psc := d.Spec.Template.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v is not restricted", psc)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s securityContext %+v is not restricted", c.Name, sc)
		}
	}
}

func manager(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return c
		}
	}
	t.Fatalf("Deployment %s has no manager container", d.Name)
	return corev1.Container{}
}

func hasArgPrefix(args []string, prefix string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, prefix) })
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ChartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.AppVersion
}
