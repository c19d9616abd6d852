package charts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// fieldOwner is the field manager of the dry-run applies.
const fieldOwner = "kafkasub-chart-test"

// Namespaces the dry-run objects go to. The ones labelled restricted make the API
// server's PodSecurity admission check every pod template against the restricted
// standard (a violation is a warning for workloads and an error for a Pod).
var testNamespaces = map[string]bool{ // name -> restricted
	releaseNamespace: true,
	"team-a":         true,
	"team-b":         true,
}

// TestServerSideDryRun sends everything users install to a real kube-apiserver (envtest)
// as a server-side apply with dryRun=All, so the API server itself validates it: the
// chart for its default values and several variants, the kustomize overlay
// config/default, the kind manifests in hack/kind, and the samples in config/samples
// (against the KafkaSubscription CRD and its CEL rules). A PodSecurity warning about a
// pod template fails the test: everything runs under the restricted standard.
//
// The ServiceMonitor kind is not part of Kubernetes: the test registers a minimal
// monitoring.coreos.com/v1 ServiceMonitor CRD (spec preserved as is), so the chart's
// ServiceMonitor is checked for its group, version, kind, metadata and namespace only.
func TestServerSideDryRun(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test ./charts/` " +
			"(make helm-test) to validate every rendered object against a real kube-apiserver")
	}
	_, cfg := startEnvtest(t, &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot, CRDSourceDir)},
		CRDs:                  []*apiextensionsv1.CustomResourceDefinition{serviceMonitorCRD()},
		ErrorIfCRDPathMissing: true,
	})
	warnings := &warningRecorder{}
	cfg.WarningHandlerWithContext = warnings
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Namespaces must exist for a dry-run of the objects in them; the kind manifests'
	// own Namespaces are created for real (they carry the Pod Security labels).
	for name, restricted := range testNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if restricted {
			ns.Labels = map[string]string{
				"pod-security.kubernetes.io/enforce": "restricted",
				"pod-security.kubernetes.io/warn":    "restricted",
			}
		}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"hack/kind/kafka.yaml", "hack/kind/postgres.yaml"} {
		for _, o := range decodeFile(t, f) {
			if o.GetKind() == "Namespace" {
				if err := c.Create(ctx, o.DeepCopy()); err != nil {
					t.Fatalf("%s: creating Namespace %s: %v", f, o.GetName(), err)
				}
			}
		}
	}

	t.Run("PodSecurity admission is active, so its warnings mean something", func(t *testing.T) {
		pod := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "privileged", "namespace": releaseNamespace},
			"spec": map[string]any{"containers": []any{map[string]any{
				"name": "c", "image": "busybox", "securityContext": map[string]any{"privileged": true},
			}}},
		}}
		err := dryRunApply(ctx, c, pod)
		if err == nil || !strings.Contains(err.Error(), "PodSecurity") {
			t.Fatalf("a privileged pod in a restricted namespace was not refused by PodSecurity admission: %v", err)
		}
	})

	chartVariants := []struct {
		name   string
		values map[string]any
	}{
		{"default values", nil},
		{"three replicas with leader election and both ServiceMonitors", map[string]any{
			"replicaCount":           3,
			"metrics":                map[string]any{"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}}},
			"consumerServiceMonitor": map[string]any{"enabled": true},
		}},
		{"namespaced RBAC for two namespaces", map[string]any{"watchNamespaces": []any{"team-a", "team-b"}}},
		{"no CRD, no metrics, an existing ServiceAccount, placement", map[string]any{
			"crds":           map[string]any{"enabled": false},
			"metrics":        map[string]any{"enabled": false},
			"serviceAccount": map[string]any{"create": false, "name": "platform-operator"},
			"nodeSelector":   map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":    []any{map[string]any{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}},
			"logLevel":       "debug",
			"image":          map[string]any{"repository": "registry.example.com/kafkasub", "tag": "v0.1.0", "pullPolicy": "Always"},
		}},
	}
	for _, v := range chartVariants {
		t.Run("chart: "+v.name, func(t *testing.T) {
			r := mustRender(t, v.values)
			applyAll(ctx, t, c, warnings, "chart", r.objects)
		})
	}

	t.Run("kustomize: config/default", func(t *testing.T) {
		applyAll(ctx, t, c, warnings, "config/default", kustomizeBuild(t, "config/default"))
	})

	t.Run("kind: hack/kind manifests", func(t *testing.T) {
		for _, f := range []string{"hack/kind/kafka.yaml", "hack/kind/postgres.yaml", "hack/kind/db-setup.yaml", "hack/kind/producer-pod.json"} {
			applyAll(ctx, t, c, warnings, f, decodeFile(t, f))
		}
	})

	t.Run("samples: config/samples in the kind app namespace", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join(repoRoot, "config/samples/*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, f := range files {
			rel, _ := filepath.Rel(repoRoot, f)
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			objs := decodeFile(t, rel)
			for _, o := range objs {
				if o.GetNamespace() == "" {
					o.SetNamespace("shop")
				}
				found = found || o.GetKind() == "KafkaSubscription"
			}
			applyAll(ctx, t, c, warnings, rel, objs)
		}
		if !found {
			t.Error("config/samples holds no KafkaSubscription; hack/kind-e2e.sh applies one from there")
		}
	})
}

// applyAll dry-run applies every object and reports each refusal and PodSecurity warning,
// naming the object.
func applyAll(ctx context.Context, t *testing.T, c client.Client, w *warningRecorder, source string, objs []*unstructured.Unstructured) {
	t.Helper()
	if len(objs) == 0 {
		t.Fatalf("%s: nothing to apply", source)
	}
	for _, o := range objs {
		id := fmt.Sprintf("%s: %s %s/%s", source, o.GetKind(), o.GetNamespace(), o.GetName())
		w.reset()
		if err := dryRunApply(ctx, c, o); err != nil {
			t.Errorf("%s was refused by the API server: %v", id, err)
		}
		for _, msg := range w.take() {
			if strings.Contains(msg, "PodSecurity") {
				t.Errorf("%s violates the restricted Pod Security Standard: %s", id, msg)
			}
		}
	}
}

func dryRunApply(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
		client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll)
}

// kustomizeBuild builds a kustomization under the repository root as `kubectl kustomize`
// (and so `kubectl apply -k` and make deploy) does, with the default load restrictions.
func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(repoRoot, dir))
	if err != nil {
		t.Fatal(err)
	}
	opts := krusty.MakeDefaultOptions()
	resMap, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(b)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return objs
}

// serviceMonitorCRD is a minimal stand-in for prometheus-operator's ServiceMonitor CRD.
func serviceMonitorCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "servicemonitors.monitoring.coreos.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "monitoring.coreos.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "servicemonitors", Singular: "servicemonitor", Kind: "ServiceMonitor", ListKind: "ServiceMonitorList",
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", XPreserveUnknownFields: ptr.To(true)},
					},
				}},
			}},
		},
	}
}

// warningRecorder collects the API server's warning headers.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warningRecorder) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = nil
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// startEnvtest starts env (a real kube-apiserver and etcd) and stops it when the test ends.
func startEnvtest(t *testing.T, env *envtest.Environment) (*envtest.Environment, *rest.Config) {
	t.Helper()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return env, cfg
}
