package charts

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kafkasub/kafkasub/controllers"
)

// TestHelmInstallUpgradeUninstall walks the README's Helm flow with the Helm SDK against a
// real kube-apiserver (envtest, no CRD preinstalled): install creates the CRD and the
// operator, a KafkaSubscription can then be created, upgrade --reuse-values changes the
// image, uninstall removes the operator but keeps the CRD and the subscriptions
// (crds.keep), and installing again adopts the kept CRD. Nothing waits for pods: envtest
// runs no controllers.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test ./charts/` " +
			"(make helm-test) to install the chart into a real kube-apiserver")
	}
	env, cfg := startEnvtest(t, &envtest.Environment{})
	scheme, err := controllers.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ch, err := loader.Load(filepath.Join(repoRoot, ChartDir))
	if err != nil {
		t.Fatal(err)
	}
	install := func(t *testing.T) {
		t.Helper()
		helmInstall(ctx, t, kubeconfig, ch, map[string]any{"image": map[string]any{"tag": "v0.1.0"}})
	}
	const crdName = "kafkasubscriptions.kafkasub.io"
	ksub := decodeFile(t, "config/samples/kafkasub_v1alpha1_kafkasubscription.yaml")[0]
	ksub.SetNamespace("default")

	t.Run("install creates the CRD and the operator", func(t *testing.T) {
		install(t)
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: crdName}, &crd); err != nil {
			t.Fatalf("the CRD was not installed: %v", err)
		}
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: releaseName}, &d); err != nil {
			t.Fatal(err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/kafkasub/kafkasub:v0.1.0" {
			t.Errorf("image %q", img)
		}
		// The CRD must be established before it serves KafkaSubscriptions.
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := c.Create(ctx, ksub.DeepCopy())
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("creating the sample KafkaSubscription after install: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("upgrade with reused values changes only what is set", func(t *testing.T) {
		up := action.NewUpgrade(helmConfig(t, kubeconfig))
		up.Namespace = releaseNamespace
		up.ReuseValues = true
		up.WaitStrategy = kube.HookOnlyStrategy
		up.Timeout = time.Minute
		if _, err := up.RunWithContext(ctx, releaseName, ch, map[string]any{"replicaCount": 2}); err != nil {
			t.Fatalf("helm upgrade: %v", err)
		}
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: releaseName}, &d); err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/kafkasub/kafkasub:v0.1.0" {
			t.Errorf("after upgrade: replicas %d image %q, want 2 and the reused tag v0.1.0", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
		}
		var role rbacv1.Role
		if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: releaseName + "-leader-election"}, &role); err != nil {
			t.Errorf("two replicas need the leader election Role: %v", err)
		}
	})

	t.Run("uninstall keeps the CRD and the subscriptions", func(t *testing.T) {
		helmUninstall(t, kubeconfig)
		for _, o := range []client.Object{
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: releaseName}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: releaseName}},
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: releaseName + "-manager"}},
		} {
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				t.Errorf("%T %s survived the uninstall (%v)", o, o.GetName(), err)
			}
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: crdName}, &crd); err != nil {
			t.Fatalf("the CRD was deleted despite crds.keep: %v", err)
		}
		if crd.DeletionTimestamp != nil {
			t.Fatal("the CRD is being deleted despite crds.keep")
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(ksub.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(ksub), got); err != nil {
			t.Errorf("the KafkaSubscription did not survive the uninstall: %v", err)
		}
	})

	t.Run("installing again adopts the kept CRD", func(t *testing.T) {
		install(t)
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: releaseName}, &d); err != nil {
			t.Fatal(err)
		}
	})
}

// helmConfig is the Helm SDK's configuration for the release namespace of the cluster in
// kubeconfig, storing releases in Secrets as the helm CLI does.
func helmConfig(t *testing.T, kubeconfig string) *action.Configuration {
	t.Helper()
	getter := genericclioptions.NewConfigFlags(false)
	getter.KubeConfig = &kubeconfig
	ns := releaseNamespace
	getter.Namespace = &ns
	ac := action.NewConfiguration()
	if err := ac.Init(getter, releaseNamespace, "secret"); err != nil {
		t.Fatal(err)
	}
	return ac
}

// helmInstall is `helm install kafkasub charts/kafkasub -n kafkasub-system
// --create-namespace` with values, without waiting for pods (envtest runs none).
func helmInstall(ctx context.Context, t *testing.T, kubeconfig string, ch chart.Charter, values map[string]any) {
	t.Helper()
	in := action.NewInstall(helmConfig(t, kubeconfig))
	in.ReleaseName = releaseName
	in.Namespace = releaseNamespace
	in.CreateNamespace = true
	in.WaitStrategy = kube.HookOnlyStrategy
	in.Timeout = time.Minute
	if _, err := in.RunWithContext(ctx, ch, values); err != nil {
		t.Fatalf("helm install: %v", err)
	}
}

// helmUninstall is `helm uninstall kafkasub -n kafkasub-system`.
func helmUninstall(t *testing.T, kubeconfig string) {
	t.Helper()
	un := action.NewUninstall(helmConfig(t, kubeconfig))
	un.WaitStrategy = kube.HookOnlyStrategy
	un.Timeout = time.Minute
	if _, err := un.Run(releaseName); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
}
