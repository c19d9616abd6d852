package charts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/controllers"
)

// TestOperatorRunsWithTheChartsRBAC installs the operator into envtest the ways users
// do (the chart with the Helm SDK, cluster-wide and restricted to watchNamespaces, and
// config/default as `make deploy` does) and runs the real `kafkasub manager` with the
// command line of the installed Deployment, as its ServiceAccount, so with only the RBAC
// the install grants. Each time it must win leader election, reconcile a
// KafkaSubscription into its consumer Deployment and write its status; restricted to
// watchNamespaces it must leave a subscription elsewhere alone.
func TestOperatorRunsWithTheChartsRBAC(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test ./charts/` " +
			"(make helm-test) to run the operator with the chart's RBAC")
	}
	env, cfg := startEnvtest(t, &envtest.Environment{})
	scheme, err := controllers.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	adminKubeconfig := filepath.Join(t.TempDir(), "admin")
	if err := os.WriteFile(adminKubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(filepath.Join(repoRoot, ChartDir))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{"shop", "team-a", "team-b"} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	// installChart installs the chart with values and returns its operator Deployment.
	installChart := func(values map[string]any) func(t *testing.T) *appsv1.Deployment {
		return func(t *testing.T) *appsv1.Deployment {
			helmInstall(ctx, t, adminKubeconfig, ch, values)
			t.Cleanup(func() { helmUninstall(t, adminKubeconfig) })
			var d appsv1.Deployment
			if err := admin.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: releaseName}, &d); err != nil {
				t.Fatal(err)
			}
			return &d
		}
	}
	// deployKustomize applies config/default as `make deploy` does and returns its
	// operator Deployment.
	deployKustomize := func(t *testing.T) *appsv1.Deployment {
		var d *appsv1.Deployment
		for _, o := range kustomizeBuild(t, "config/default") {
			if err := admin.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
				t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
			}
			if o.GetKind() == "Deployment" {
				d = &appsv1.Deployment{}
				toTyped(t, o, d)
			}
		}
		if d == nil {
			t.Fatal("config/default has no Deployment")
		}
		return d
	}

	modes := []struct {
		name      string
		install   func(t *testing.T) *appsv1.Deployment
		reconcile string // namespace whose subscription must be reconciled
		ignore    string // namespace whose subscription must be left alone
	}{
		{"chart, cluster-wide with two replicas", installChart(map[string]any{"replicaCount": 2}), "shop", ""},
		{"chart, namespaced to team-a", installChart(map[string]any{"leaderElection": map[string]any{"enabled": true}, "watchNamespaces": []any{"team-a"}}), "team-a", "team-b"},
		{"kustomize config/default", deployKustomize, "shop", ""},
	}
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			d := m.install(t)
			args := slices.Clone(manager(t, d).Args[1:])
			if !slices.Contains(args, "--leader-elect=true") && !slices.Contains(args, "--leader-elect") {
				t.Fatalf("leader election should be on: %v", args)
			}
			saKubeconfig := serviceAccountKubeconfig(t, env, d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
			// Out of a pod the manager cannot discover its namespace, and the ports are
			// the test's; everything else is the chart's command line.
			args = append(args,
				"--kubeconfig="+saKubeconfig,
				"--leader-election-namespace="+d.Namespace,
				"--metrics-bind-address=0",
				"--health-probe-bind-address="+freeAddr(t),
			)
			startManager(t, args)

			name := fmt.Sprintf("inventory-%d", i)
			create := func(ns string) *kafkasubv1alpha1.KafkaSubscription {
				var k kafkasubv1alpha1.KafkaSubscription
				toTyped(t, decodeFile(t, "config/samples/kafkasub_v1alpha1_kafkasubscription.yaml")[0], &k)
				k.Name, k.Namespace = name, ns
				// The CRD the chart just installed may not be served yet.
				poll(t, "creating KafkaSubscription "+ns+"/"+name, func() error {
					return admin.Create(ctx, k.DeepCopy())
				})
				return &k
			}
			k := create(m.reconcile)
			var ignored *kafkasubv1alpha1.KafkaSubscription
			if m.ignore != "" {
				ignored = create(m.ignore)
			}

			poll(t, "the consumer Deployment is created and the status written", func() error {
				if err := admin.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: controllers.ChildName(k.Name)}, &appsv1.Deployment{}); err != nil {
					return err
				}
				got := &kafkasubv1alpha1.KafkaSubscription{}
				if err := admin.Get(ctx, client.ObjectKeyFromObject(k), got); err != nil {
					return err
				}
				if len(got.Status.Conditions) == 0 {
					return errors.New("no status conditions yet")
				}
				return nil
			})
			if ignored != nil {
				// The watched subscription is done, so the operator has had its chance.
				err := admin.Get(ctx, client.ObjectKey{Namespace: ignored.Namespace, Name: controllers.ChildName(ignored.Name)}, &appsv1.Deployment{})
				if err == nil {
					t.Errorf("the subscription in unwatched namespace %s was reconciled", ignored.Namespace)
				}
				got := &kafkasubv1alpha1.KafkaSubscription{}
				if err := admin.Get(ctx, client.ObjectKeyFromObject(ignored), got); err != nil || len(got.Status.Conditions) != 0 {
					t.Errorf("the subscription in unwatched namespace %s has status %+v (%v)", ignored.Namespace, got.Status, err)
				}
			}
		})
	}
}

// envManagerArgs makes the test binary run `kafkasub manager` with these args (JSON)
// instead of the tests: each manager gets a process of its own, as in a pod (and
// controller-runtime allows one controller of a name per process).
const envManagerArgs = "KAFKASUB_CHART_TEST_MANAGER_ARGS"

// managerStopLimit bounds how long a stopping manager may take before the test kills it
// (a hung child must not outlive the test); the kubelet would have killed it long before.
const managerStopLimit = time.Minute

func TestMain(m *testing.M) {
	if raw, ok := os.LookupEnv(envManagerArgs); ok {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, envManagerArgs+":", err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		cmd := controllers.NewManagerCommand()
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(ctx)
		stop()
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "kafkasub manager:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startManager runs `kafkasub manager args...` in a child process until the test ends,
// then stops it with SIGTERM (as the kubelet does) and logs its output if the test failed.
func startManager(t *testing.T, args []string) {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envManagerArgs+"="+string(raw))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var err error
		select {
		case err = <-exited:
		case <-time.After(managerStopLimit):
			_ = cmd.Process.Kill()
			<-exited
			err = fmt.Errorf("it did not stop within %s of SIGTERM and was killed", managerStopLimit)
		}
		if err != nil {
			t.Errorf("kafkasub manager: %v", err)
		}
		if err != nil || t.Failed() {
			t.Logf("kafkasub manager output:\n%s", out.String())
		}
	})
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the ServiceAccount
// namespace/name, the identity of the operator's pod.
func serviceAccountKubeconfig(t *testing.T, env *envtest.Environment, namespace, name string) string {
	t.Helper()
	user, err := env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// poll calls check until it succeeds, failing the test after a minute.
func poll(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
