package charts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The release every test renders, as `helm install kafkasub charts/kafkasub -n kafkasub-system`.
const (
	releaseName      = "kafkasub"
	releaseNamespace = "kafkasub-system"
	kubeVersion      = "v1.37.2"
	// repoRoot is the repository root as seen from this package's directory.
	repoRoot = ".."
)

// rendered is one rendered release: its objects in manifest order and its NOTES.txt.
type rendered struct {
	objects []*unstructured.Unstructured
	notes   string
}

// renderChart renders charts/kafkasub with the Helm SDK exactly as `helm install
// --dry-run=client` does: values are merged with values.yaml and validated against
// values.schema.json, every template is rendered and parsed, NOTES.txt is rendered.
func renderChart(t *testing.T, values map[string]any) (*rendered, error) {
	t.Helper()
	ch, err := loader.Load(filepath.Join(repoRoot, ChartDir))
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	cfg := action.NewConfiguration()
	cfg.Releases = storage.Init(driver.NewMemory())
	cfg.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}
	cfg.Capabilities = common.DefaultCapabilities

	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = releaseNamespace
	install.Replace = true
	// The Kubernetes version of the envtest kube-apiserver and of k8s.io/api in go.mod
	// (a test binary has no build info, from which Helm would take its default).
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install.KubeVersion = kv
	if values == nil {
		values = map[string]any{}
	}
	rel, err := install.RunWithContext(context.Background(), ch, values)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("unexpected release type %T", rel)
	}
	objs, err := decodeObjects([]byte(r.Manifest))
	if err != nil {
		t.Fatalf("the rendered manifest does not parse: %v\n%s", err, r.Manifest)
	}
	return &rendered{objects: objs, notes: r.Info.Notes}, nil
}

// mustRender renders the chart and fails the test on an error.
func mustRender(t *testing.T, values map[string]any) *rendered {
	t.Helper()
	r, err := renderChart(t, values)
	if err != nil {
		t.Fatalf("rendering the chart with %v: %v", values, err)
	}
	return r
}

// decodeObjects parses a multi-document YAML (or JSON) stream, skipping empty documents.
func decodeObjects(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// decodeFile parses the objects of a manifest file under the repository root.
func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s holds no object", path)
	}
	return objs
}

// get returns the object of that kind and name (any namespace), or nil.
func (r *rendered) get(kind, name string) *unstructured.Unstructured {
	for _, o := range r.objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// must returns the object of that kind and name or fails the test.
func (r *rendered) must(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := r.get(kind, name)
	if o == nil {
		t.Fatalf("no %s %q rendered; rendered: %s", kind, name, strings.Join(r.names(), ", "))
	}
	return o
}

// names lists "Kind/namespace/name" of every object, sorted.
func (r *rendered) names() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

// kinds counts the rendered objects per kind.
func (r *rendered) kinds() map[string]int {
	out := map[string]int{}
	for _, o := range r.objects {
		out[o.GetKind()]++
	}
	return out
}

// deployment returns the operator Deployment as a typed object.
func (r *rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	toTyped(t, r.must(t, "Deployment", releaseName), &d)
	return &d
}

func toTyped(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s %s does not convert strictly to its Go type: %v", u.GetKind(), u.GetName(), err)
	}
}
