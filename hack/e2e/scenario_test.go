package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"gorm.io/gorm"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/dbfault"
	"github.com/kafkasub/kafkasub/consumer/inventory"
	"github.com/kafkasub/kafkasub/controllers"
)

// envBinary names a prebuilt kafkasub binary; without it the test builds one.
const envBinary = "KAFKASUB_E2E_BIN"

// partitions of the subscription's topic: two, so two replicas can share it.
const partitions = 2

// TestKafkaSubscriptionEndToEnd runs the operator as `kafkasub manager` and every consumer
// Pod as `kafkasub consumer` with the Pod's own command, env and files, and walks a
// subscription through its life: the sample applied, the walk-through's six cases, a spec
// change that rolls the pods (and skips a class of errors), two replicas sharing the
// partitions, suspend and resume, and deletion with garbage collection of every child. At
// each turn the subscription's status says what its consumers report: lag, dead letters,
// the last error, DatabaseReady and ConsumersJoined. Meanwhile, in a namespace of their
// own, the example handler (examples/orderstatus) runs from its own image, a subscription
// whose image lacks its handler turns Degraded with the consumer's termination message, and
// one with deadLetter.create gets its dead-letter topic made by its consumer.
//
// Kafka is an in-process kfake broker, or Apache Kafka when KAFKASUB_TEST_KAFKA_BROKERS is
// set. The database is PostgreSQL behind a TCP proxy the test cuts when
// KAFKASUB_TEST_POSTGRES_DSN is set; otherwise SQLite, where the database-down and the
// two-replica steps skip (a SQLite file cannot be cut from outside the consumer process, and
// the API allows one replica for SQLite, which the test checks instead).
func TestKafkaSubscriptionEndToEnd(t *testing.T) {
	cp := requireControlPlane(t)
	s := setUpScenario(t, cp)

	// Beside inventory, in a namespace of their own: the example handler from its own
	// image, and a subscription whose image lacks its handler.
	sideBySide := s.goSideBySide()
	s.step("apply the sample Secret and KafkaSubscription and wait for Ready", s.applySamples)
	s.step("the walk-through's cases: valid, negative count, unknown product, not JSON, unexpected attributes", s.walkThrough)
	s.step("database down: the update is retried, not lost, and applied when the database returns", s.databaseDown)
	s.step("change the retry policy: the pods roll and the new ones consume", s.changeRetryPolicy)
	s.step("scale to 2 replicas: both consumers share the partitions", s.scaleToTwo)
	s.step("suspend: consumption stops; resume: the waiting update is applied", s.suspendAndResume)
	s.step("move to a broker with TLS (CA from a mounted Secret) and SASL SCRAM-SHA-512 (credentials from the same projected volume)", s.kafkaTLSAndSASL)
	sideBySide()
	s.step("delete the subscription: Deployment, ConfigMap, Service and PodDisruptionBudget are garbage-collected", s.deleteSubscription)
}

type scenario struct {
	t   *testing.T
	cp  *controlPlane
	ctx context.Context

	ns   string
	name string

	brokers    []string
	topic, dlq string
	realKafka  bool
	producer   sarama.SyncProducer
	admin      sarama.ClusterAdmin

	driver   string
	dsn      string         // what the consumers get (through the proxy for PostgreSQL)
	proxy    *dbfault.Proxy // nil for SQLite
	db       *gorm.DB       // direct, for the test's own reads
	products []inventory.Product

	bin     string
	manager *process
	kubelet *kubelet
	// ordersBin is the example handler's image (examples/orderstatus) built from this checkout.
	ordersBin string

	// dlqSeen counts the dead-letter records asserted so far.
	dlqSeen int
	// secrets are values that must appear only in Secrets and the consumers' environment:
	// never in a child object, a ConfigMap or a log.
	secrets []string
}

// step runs one part of the scenario as a subtest; the scenario stops at the first failure.
func (s *scenario) step(name string, fn func(t *testing.T)) {
	if s.t.Failed() {
		return
	}
	start := time.Now()
	s.t.Logf("STEP %s", name)
	ok := s.t.Run(name, fn)
	s.t.Logf("STEP %s: %s in %s", name, map[bool]string{true: "done", false: "FAILED"}[ok], time.Since(start).Round(time.Millisecond))
}

// stopWaiting is a condition error that ends a wait at once.
type stopWaiting struct{ error }

// waitFor polls cond until it holds, failing the test after timeout or as soon as the
// manager or a consumer process dies or a Pod cannot be run.
func (s *scenario) waitFor(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	s.waitWith(t, s.kubelet, what, timeout, cond)
}

// waitWith is waitFor watching the Pods of kubelet k (nil: none).
func (s *scenario) waitWith(t *testing.T, k *kubelet, what string, timeout time.Duration, cond func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	var fatal error
	err := s.cp.waitFor(ctx, what, func(ctx context.Context) (bool, string, error) {
		if ended, err := s.manager.exited(); ended {
			fatal = fmt.Errorf("kafkasub manager exited (%v); last lines:\n%s", err, s.manager.tail(30))
			return true, "", nil
		}
		if k != nil {
			if err := k.check(); err != nil {
				fatal = err
				return true, "", nil
			}
		}
		ok, seen, err := cond(ctx)
		var sw stopWaiting
		if errors.As(err, &sw) {
			fatal = sw.error
			return true, "", nil
		}
		return ok, seen, err
	})
	if fatal != nil {
		t.Fatalf("waiting for %s: %v", what, fatal)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// setUpScenario starts Kafka, the database and the operator binary (the control plane has
// the CRD from its start).
func setUpScenario(t *testing.T, cp *controlPlane) *scenario {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	s := &scenario{t: t, cp: cp, ctx: ctx, ns: uniqueKubeName("e2e-ksub"), name: "inventory"}
	if err := kafkasubv1alpha1.AddToScheme(cp.scheme); err != nil {
		t.Fatal(err)
	}

	sample := s.readSamples(t)
	var ksub *unstructured.Unstructured
	for _, o := range sample {
		if o.GetKind() == "KafkaSubscription" {
			ksub = o
		}
	}
	if ksub == nil {
		t.Fatal("config/samples has no KafkaSubscription")
	}
	s.name = ksub.GetName()
	s.topic, _, _ = unstructured.NestedString(ksub.Object, "spec", "kafka", "topic")
	s.dlq, _, _ = unstructured.NestedString(ksub.Object, "spec", "deadLetter", "topic")

	t.Log("STEP start Kafka")
	if v := os.Getenv(consumertest.EnvKafkaBrokers); v != "" {
		// A shared broker: topics of their own for this run.
		s.realKafka = true
		suffix := strings.TrimPrefix(consumertest.UniqueName(""), "_")
		s.topic, s.dlq = s.topic+"."+suffix, s.dlq+"."+suffix
		s.brokers = consumertest.RealKafka(t, partitions, s.topic, s.dlq)
		t.Logf("Apache Kafka at %v (%s), topics %s and %s", s.brokers, consumertest.EnvKafkaBrokers, s.topic, s.dlq)
	} else {
		s.brokers = consumertest.Kfake(t, partitions, s.topic, s.dlq)
		t.Logf("in-process kfake broker at %v (set %s for Apache Kafka), topics %s and %s", s.brokers, consumertest.EnvKafkaBrokers, s.topic, s.dlq)
	}
	s.producer = consumertest.Producer(t, s.brokers)
	var err error
	if s.admin, err = sarama.NewClusterAdmin(s.brokers, sarama.NewConfig()); err != nil {
		t.Fatalf("Kafka admin client: %v", err)
	}
	t.Cleanup(func() { _ = s.admin.Close() })

	t.Log("STEP prepare the database (migrate and seed, as db:create and db:reset)")
	var direct string
	if os.Getenv(consumertest.EnvPostgresDSN) != "" {
		s.driver = consumer.DriverPostgres
		direct = consumertest.PostgresDSN(t)
		hostport, err := consumertest.HostPort(direct)
		if err != nil {
			t.Fatalf("%s: %v", consumertest.EnvPostgresDSN, err)
		}
		if s.proxy, err = dbfault.NewProxy(hostport); err != nil {
			t.Fatalf("database proxy: %v", err)
		}
		t.Cleanup(func() { _ = s.proxy.Close() })
		s.dsn = consumertest.ReplaceHost(direct, s.proxy.Addr())
		t.Logf("PostgreSQL from %s, reached by the consumers through a TCP proxy at %s that the test can cut", consumertest.EnvPostgresDSN, s.proxy.Addr())
	} else {
		s.driver = consumer.DriverSQLite
		direct = consumertest.SQLiteDSN(t)
		s.dsn = direct
		t.Logf("SQLite file (set %s for PostgreSQL and the database-down and two-replica steps)", consumertest.EnvPostgresDSN)
	}
	s.secrets = append(s.secrets, s.dsn)
	if s.db, err = consumer.OpenDatabase(s.driver, direct); err != nil {
		t.Fatalf("open the database: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := s.db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if err := inventory.Migrate(ctx, s.db); err != nil {
		t.Fatal(err)
	}
	if s.products, err = inventory.Seed(ctx, s.db); err != nil {
		t.Fatal(err)
	}
	if len(s.products) < 3 {
		t.Fatalf("want at least 3 seeded products, got %d", len(s.products))
	}

	// The example handler's image is built at the same time.
	orders := make(chan error, 1)
	go func() {
		var err error
		s.ordersBin, err = s.buildOrderStatusBinary(t)
		orders <- err
	}()
	s.bin = s.buildBinary(t)
	if err := <-orders; err != nil {
		t.Fatal(err)
	}

	if err := cp.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}); err != nil {
		t.Fatal(err)
	}

	s.startManager(t)
	return s
}

// uniqueKubeName is a unique name that Kubernetes accepts for a namespace.
func uniqueKubeName(prefix string) string {
	return strings.ReplaceAll(consumertest.UniqueName(prefix), "_", "-")
}

// readSamples decodes every object of config/samples (the kustomization excepted).
func (s *scenario) readSamples(t *testing.T) []*unstructured.Unstructured {
	dir := filepath.Join(repoRoot, "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", dir, err)
	}
	sort.Strings(files)
	var out []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(fh), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if len(obj) == 0 {
				continue
			}
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
		fh.Close()
	}
	return out
}

// buildBinary builds kafkasub from this checkout as the Dockerfile does (or uses
// KAFKASUB_E2E_BIN).
func (s *scenario) buildBinary(t *testing.T) string {
	if b := os.Getenv(envBinary); b != "" {
		t.Logf("STEP use the kafkasub binary %s (%s)", b, envBinary)
		return b
	}
	bin := filepath.Join(t.TempDir(), "kafkasub")
	t.Log("STEP build the kafkasub binary (go build, CGO_ENABLED=0)")
	start := time.Now()
	cmd := exec.CommandContext(s.ctx, "go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// startManager runs `kafkasub manager` as a user that has only the operator's ClusterRole
// (config/rbac), so a missing permission fails here as it would in a cluster.
func (s *scenario) startManager(t *testing.T) {
	t.Log("STEP start `kafkasub manager` as a user bound to the ClusterRole of config/rbac")
	roleYAML, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(roleYAML, &role); err != nil {
		t.Fatalf("config/rbac/role.yaml: %v", err)
	}
	if err := s.cp.client.Create(s.ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create the ClusterRole: %v", err)
	}
	const user = "kafkasub-e2e-manager"
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := s.cp.client.Create(s.ctx, binding); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create the ClusterRoleBinding: %v", err)
	}
	u, err := s.cp.env.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(s.cp.logDir, "kubeconfig-manager")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	health := freePort()
	env := append(os.Environ(), "KUBECONFIG="+kubeconfig)
	s.manager, err = startProcess("kafkasub-manager", s.cp.logDir, "", env, s.bin, "manager",
		"--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address="+health,
		"--status-poll-interval="+statusPollInterval.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.manager.stop(30 * time.Second); err != nil {
			t.Errorf("kafkasub manager: %v", err)
		}
		if t.Failed() {
			t.Logf("last lines of the manager log (%s):\n%s", s.manager.logPath, s.manager.tail(40))
		}
	})
	s.waitFor(t, "the manager's /readyz", time.Minute, func(ctx context.Context) (bool, string, error) {
		code, err := httpStatus(ctx, "http://"+health+"/readyz")
		return code == http.StatusOK, strconv.Itoa(code), err
	})
}

func httpStatus(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// applySamples creates the sample Secret and KafkaSubscription, pointed at this test's
// Kafka and database, and waits until the subscription is Ready with one consumer running.
func (s *scenario) applySamples(t *testing.T) {
	objs := s.readSamples(t)
	// The Secret and key the subscription takes its DSN from.
	var dsnSecret, dsnKey string
	for _, o := range objs {
		if o.GetKind() == "KafkaSubscription" {
			dsnSecret, _, _ = unstructured.NestedString(o.Object, "spec", "database", "dsnSecretRef", "name")
			dsnKey, _, _ = unstructured.NestedString(o.Object, "spec", "database", "dsnSecretRef", "key")
		}
	}
	for _, o := range objs {
		o.SetNamespace(s.ns)
		switch o.GetKind() {
		case "KafkaSubscription":
			servers := make([]any, len(s.brokers))
			for i, b := range s.brokers {
				servers[i] = b
			}
			must(t, unstructured.SetNestedSlice(o.Object, servers, "spec", "kafka", "bootstrapServers"))
			must(t, unstructured.SetNestedField(o.Object, s.topic, "spec", "kafka", "topic"))
			must(t, unstructured.SetNestedField(o.Object, s.dlq, "spec", "deadLetter", "topic"))
			must(t, unstructured.SetNestedField(o.Object, s.driver, "spec", "database", "driver"))
			// One replica to begin with: the scale step goes to two.
			must(t, unstructured.SetNestedField(o.Object, int64(1), "spec", "replicas"))
			t.Logf("KafkaSubscription %s/%s: bootstrapServers %v, driver %s, replicas 1 (the sample's other fields as written)", s.ns, o.GetName(), s.brokers, s.driver)
		case "Secret":
			if o.GetName() != dsnSecret {
				break
			}
			// The sample's Secret carries the DSN; point it at this test's database.
			unstructured.RemoveNestedField(o.Object, "data", dsnKey)
			must(t, unstructured.SetNestedField(o.Object, s.dsn, "stringData", dsnKey))
			t.Logf("Secret %s/%s: %s set to this test's %s database", s.ns, o.GetName(), dsnKey, s.driver)
		}
		if err := s.cp.client.Create(s.ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	s.kubelet = startKubelet(s.t, s.cp, kubeletConfig{bin: s.bin}, s.ns, map[string]string{
		controllers.LabelInstance:  s.name,
		controllers.LabelComponent: controllers.ComponentConsumer,
	})
	s.waitSubscriptionReady(t, 1)
	s.waitConsumers(t, 1, nil)

	ks := s.get(t)
	// The children the delete step expects to be garbage-collected exist, owned by the
	// subscription, and none of them carries the secret DSN.
	key := client.ObjectKey{Namespace: s.ns, Name: controllers.ChildName(s.name)}
	for _, o := range []client.Object{&appsv1.Deployment{}, &corev1.ConfigMap{}, &corev1.Service{}} {
		if err := s.cp.client.Get(s.ctx, key, o); err != nil {
			t.Fatalf("%T %s: %v", o, key, err)
		}
		if ref := metav1.GetControllerOf(o); ref == nil || ref.UID != ks.UID {
			t.Errorf("%T %s: controller reference %v, want the subscription (uid %s)", o, key, ref, ks.UID)
		}
	}
	s.assertNoSecretInChildren(s.ctx, t)
	// The metrics Service reaches the container's metrics port.
	var dep appsv1.Deployment
	var svc corev1.Service
	must(t, s.cp.client.Get(s.ctx, key, &dep))
	must(t, s.cp.client.Get(s.ctx, key, &svc))
	ports := map[string]bool{}
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = true
		ports[strconv.Itoa(int(p.ContainerPort))] = true
	}
	for _, p := range svc.Spec.Ports {
		if !ports[p.TargetPort.String()] {
			t.Errorf("Service port %s targets %s, which the consumer container does not expose", p.Name, p.TargetPort.String())
		}
	}
	if ks.Status.ConsumerGroup != s.ns+"."+s.name {
		t.Errorf("status.consumerGroup = %q, want the default %q", ks.Status.ConsumerGroup, s.ns+"."+s.name)
	}
	if ks.Status.DeploymentName != controllers.ChildName(s.name) {
		t.Errorf("status.deploymentName = %q, want %q", ks.Status.DeploymentName, controllers.ChildName(s.name))
	}
	// What the consumer reports at its status endpoint, polled by the operator at the Pod's IP.
	s.waitStatus(t, "ConsumersJoined=True, DatabaseReady=True, lag 0", consumersHealthy)
}

// assertNoSecretInChildren checks that no secret value is in the subscription, its
// Deployment, ConfigMap or Service: secrets reach pods only through Secret references.
func (s *scenario) assertNoSecretInChildren(ctx context.Context, t *testing.T) {
	t.Helper()
	key := client.ObjectKey{Namespace: s.ns, Name: controllers.ChildName(s.name)}
	for _, o := range []client.Object{&kafkasubv1alpha1.KafkaSubscription{}, &appsv1.Deployment{}, &corev1.ConfigMap{}, &corev1.Service{}} {
		k := key
		if _, ok := o.(*kafkasubv1alpha1.KafkaSubscription); ok {
			k.Name = s.name
		}
		if err := s.cp.client.Get(ctx, k, o); err != nil {
			t.Fatalf("%T %s: %v", o, k, err)
		}
		raw, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		for i, secret := range s.secrets {
			if strings.Contains(string(raw), secret) {
				t.Errorf("%T %s contains secret value #%d: secrets must reach pods only through Secret references", o, k, i)
			}
		}
	}
}

// get reads the subscription.
func (s *scenario) get(t *testing.T) *kafkasubv1alpha1.KafkaSubscription {
	t.Helper()
	var ks kafkasubv1alpha1.KafkaSubscription
	if err := s.cp.client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: s.name}, &ks); err != nil {
		t.Fatalf("get the subscription: %v", err)
	}
	return &ks
}

// patch applies a JSON merge patch to the subscription, as `kubectl patch --type merge`.
func (s *scenario) patch(ctx context.Context, p map[string]any) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	ks := &kafkasubv1alpha1.KafkaSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name}}
	return s.cp.client.Patch(ctx, ks, client.RawPatch(types.MergePatchType, body))
}

// waitSubscriptionReady waits for Ready=True on the current generation with replicas ready.
func (s *scenario) waitSubscriptionReady(t *testing.T, replicas int32) {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("subscription Ready=True with %d ready replicas", replicas), 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		var ks kafkasubv1alpha1.KafkaSubscription
		if err := s.cp.client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: s.name}, &ks); err != nil {
			return false, "", err
		}
		c := meta.FindStatusCondition(ks.Status.Conditions, kafkasubv1alpha1.ConditionReady)
		seen := fmt.Sprintf("generation %d observed %d, ready replicas %d/%d, Ready %v", ks.Generation, ks.Status.ObservedGeneration, ks.Status.ReadyReplicas, ks.Status.Replicas, c)
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == ks.Generation &&
			ks.Status.ObservedGeneration == ks.Generation && ks.Status.ReadyReplicas == replicas, seen, nil
	})
}

// waitConsumers waits until exactly n consumer processes run, each answering its readiness
// probe with 200 (joined the group, database up), and each passing check when given.
func (s *scenario) waitConsumers(t *testing.T, n int, check func(*podProcess) error) []*podProcess {
	t.Helper()
	var procs []*podProcess
	s.waitFor(t, fmt.Sprintf("%d ready consumer process(es)", n), 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		procs = s.kubelet.running()
		if len(procs) != n {
			return false, fmt.Sprintf("%d running", len(procs)), nil
		}
		for _, pp := range procs {
			if check != nil {
				if err := check(pp); err != nil {
					return false, pp.pod.Name + ": " + err.Error(), nil
				}
			}
			if ok, status := pp.live(ctx); !ok {
				return false, pp.pod.Name + " liveness: " + status, nil
			}
			if ok, status := pp.ready(ctx); !ok {
				return false, pp.pod.Name + " readiness: " + status, nil
			}
		}
		return true, "", nil
	})
	return procs
}

// produce sends one record to a partition of the subscription's topic.
func (s *scenario) produce(t *testing.T, partition int32, value string) {
	t.Helper()
	_, offset, err := s.producer.SendMessage(&sarama.ProducerMessage{Topic: s.topic, Partition: partition, Value: sarama.StringEncoder(value)})
	if err != nil {
		t.Fatalf("produce %q: %v", value, err)
	}
	t.Logf("produced %s to %s/%d at offset %d", value, s.topic, partition, offset)
}

// inventoryOf reads a product's inventory straight from the database.
func (s *scenario) inventoryOf(ctx context.Context, code string) (int64, error) {
	var p inventory.Product
	err := s.db.WithContext(ctx).Where("code = ?", code).First(&p).Error
	return p.Inventory, err
}

// waitInventory waits until a product's inventory is want.
func (s *scenario) waitInventory(t *testing.T, code string, want int64) {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("inventory of %s = %d", code, want), 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		got, err := s.inventoryOf(ctx, code)
		return got == want, strconv.FormatInt(got, 10), err
	})
}

// dlqRecords reads the dead-letter topic.
func (s *scenario) dlqRecords(t *testing.T, want int) []*sarama.ConsumerMessage {
	t.Helper()
	var recs []*sarama.ConsumerMessage
	s.waitFor(t, fmt.Sprintf("%d dead-letter records", want), 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		recs = consumertest.ReadTopic(t, s.brokers, s.dlq, want, 0)
		return len(recs) >= want, fmt.Sprintf("%d records", len(recs)), nil
	})
	if len(recs) != want {
		t.Fatalf("want %d dead-letter records, got %d", want, len(recs))
	}
	return recs
}

// walkThrough produces the walk-through's valid and permanently invalid cases and checks
// the database and the dead-letter topic.
func (s *scenario) walkThrough(t *testing.T) {
	first := s.products[0]
	t.Logf("Product.first is %s with inventory %d", first.Code, first.Inventory)
	cases := []struct {
		value string
		class consumer.ErrorClass
		msg   string
	}{
		{fmt.Sprintf(`{"product_code": %q, "inventory_count": 25}`, first.Code), "", ""},
		{fmt.Sprintf(`{"product_code": %q, "inventory_count": -1}`, first.Code), consumer.ClassValidationFailed, inventory.MsgInventoryCountNegative},
		{`{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`, consumer.ClassValidationFailed, inventory.MsgProductCodeUnknown("NO_SUCH_CODE")},
		{`this is no good`, consumer.ClassInvalidPayload, "not a JSON object"},
		{`{"greeting": "hello"}`, consumer.ClassUnexpectedAttributes, "greeting"},
	}
	for _, c := range cases {
		s.produce(t, 0, c.value)
	}
	s.waitInventory(t, first.Code, 25)

	recs := s.dlqRecords(t, 4)
	byValue := map[string]*sarama.ConsumerMessage{}
	for _, r := range recs {
		byValue[string(r.Value)] = r
	}
	ks := s.get(t)
	for _, c := range cases[1:] {
		r, ok := byValue[c.value]
		if !ok {
			t.Errorf("%s: not in the dead-letter topic", c.value)
			continue
		}
		headers := make([]consumer.Header, len(r.Headers))
		for i, h := range r.Headers {
			headers[i] = consumer.Header{Key: string(h.Key), Value: h.Value}
		}
		dl, _ := consumer.ParseDeadLetter(headers)
		if dl.ErrorClass != c.class || !strings.Contains(dl.ErrorMessage, c.msg) {
			t.Errorf("%s: dead-lettered as %s %q, want %s containing %q", c.value, dl.ErrorClass, dl.ErrorMessage, c.class, c.msg)
		}
		if dl.OriginalTopic != s.topic || dl.OriginalPartition != 0 || dl.ConsumerGroup != ks.Status.ConsumerGroup || dl.Subscription != s.ns+"/"+s.name {
			t.Errorf("%s: headers say topic %s partition %d group %s subscription %s; want %s 0 %s %s",
				c.value, dl.OriginalTopic, dl.OriginalPartition, dl.ConsumerGroup, dl.Subscription, s.topic, ks.Status.ConsumerGroup, s.ns+"/"+s.name)
		}
		t.Logf("dead-lettered %s: %s: %s", c.value, dl.ErrorClass, dl.ErrorMessage)
	}
	s.dlqSeen = 4
	if got, _ := s.inventoryOf(s.ctx, first.Code); got != 25 {
		t.Errorf("inventory of %s = %d after the invalid updates, want 25 unchanged", first.Code, got)
	}

	// The status counts the dead letters and repeats the consumer's last error, one of the
	// four (which one is the pipeline's order: decoding comes before validation).
	procs := s.kubelet.running()
	if len(procs) != 1 {
		t.Fatalf("%d consumers, want 1", len(procs))
	}
	var last *consumer.ErrorStatus
	ks = s.waitStatus(t, "deadLetters.count 4 and lastError the consumer's last error", func(st *kafkasubv1alpha1.KafkaSubscriptionStatus) (bool, string) {
		cs, err := consumerStatus(s.ctx, procs[0])
		if err != nil || cs.LastError == nil {
			return false, fmt.Sprintf("the consumer's /status: %v, last error %v", err, cs.LastError)
		}
		last = cs.LastError
		e, dl := st.LastError, st.DeadLetters
		return dl != nil && dl.Count == 4 && dl.LastTime != nil && e != nil && e.Class == string(last.Class) && e.Message == last.Message,
			fmt.Sprintf("%s; the consumer's last error %s %q", describeConsumerStatus(st), last.Class, last.Message)
	})
	known := false
	for _, c := range cases[1:] {
		known = known || (last.Class == c.class && strings.Contains(last.Message, c.msg))
	}
	if !known || !last.Permanent || last.Topic != s.topic || last.Partition != 0 {
		t.Errorf("the last error %+v is none of the dead-lettered cases on %s/0", last, s.topic)
	}
	t.Logf("status.deadLetters %d (last %s), status.lastError %s: %s", ks.Status.DeadLetters.Count, ks.Status.DeadLetters.LastTime, ks.Status.LastError.Class, ks.Status.LastError.Message)
	s.showSubscription(t, "after four dead letters", s.ns, s.name)
}

// metric sums a counter or gauge over its label sets in a consumer's /metrics.
func metric(ctx context.Context, pp *podProcess, name string, labelFilter string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pp.metricsURL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		if labelFilter != "" && !strings.Contains(line, labelFilter) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// databaseDown cuts the database while a valid update arrives: the consumer turns unready
// and retries; nothing is dead-lettered or lost; the update lands once the database returns.
func (s *scenario) databaseDown(t *testing.T) {
	if s.proxy == nil {
		t.Skipf("needs PostgreSQL behind a proxy the test can cut: set %s (hack/postgres.sh start prints one)", consumertest.EnvPostgresDSN)
	}
	first := s.products[0]
	procs := s.kubelet.running()
	retriesBefore := map[string]float64{}
	for _, pp := range procs {
		v, err := metric(s.ctx, pp, consumer.MetricRetries, "")
		if err != nil {
			t.Fatal(err)
		}
		retriesBefore[pp.pod.Name] = v
	}
	t.Log("cut the database (the TCP proxy drops every connection and refuses new ones)")
	s.proxy.Cut()
	restored := false
	defer func() {
		if !restored {
			s.proxy.Restore()
		}
	}()
	s.produce(t, 0, fmt.Sprintf(`{"product_code": %q, "inventory_count": 30}`, first.Code))
	s.waitFor(t, "every consumer unready and retrying the update", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		for _, pp := range procs {
			if ok, status := pp.ready(ctx); ok {
				return false, pp.pod.Name + " still ready: " + status, nil
			}
		}
		var retries float64
		for _, pp := range procs {
			v, err := metric(ctx, pp, consumer.MetricRetries, "")
			if err != nil {
				return false, "", err
			}
			retries += v - retriesBefore[pp.pod.Name]
		}
		return retries > 0, fmt.Sprintf("%v retries", retries), nil
	})
	if got, err := s.inventoryOf(s.ctx, first.Code); err != nil || got != 25 {
		t.Fatalf("inventory of %s = %d (%v) while the database is cut, want 25", first.Code, got, err)
	}
	// The status says why: the database, and the update waiting as lag.
	ks := s.waitStatus(t, "DatabaseReady=False (DatabaseUnreachable) naming the pods, lag above 0, lastError DatabaseUnavailable", func(st *kafkasubv1alpha1.KafkaSubscriptionStatus) (bool, string) {
		down, seen := hasCondition(st, kafkasubv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, kafkasubv1alpha1.ReasonDatabaseUnreachable)
		for _, pp := range procs {
			down = down && strings.Contains(seen, pp.pod.Name)
		}
		return down && st.Lag != nil && st.Lag.Total > 0 && st.LastError != nil && st.LastError.Class == string(consumer.ClassDatabaseUnavailable),
			seen + "; " + describeConsumerStatus(st)
	})
	t.Logf("database down: %s", describeConsumerStatus(&ks.Status))
	s.showSubscription(t, "database down, an update waiting", s.ns, s.name)
	t.Log("restore the database")
	s.proxy.Restore()
	restored = true
	s.waitInventory(t, first.Code, 30)
	s.waitConsumers(t, len(procs), nil)
	s.waitStatus(t, "DatabaseReady=True, ConsumersJoined=True, lag 0", consumersHealthy)
	if recs := consumertest.ReadTopic(t, s.brokers, s.dlq, s.dlqSeen, 0); len(recs) != s.dlqSeen {
		t.Errorf("the dead-letter topic has %d records, want %d: the database outage must not dead-letter", len(recs), s.dlqSeen)
	}
}

// changeRetryPolicy edits spec.retry and spec.errorPolicy (skip UnexpectedAttributes): the
// config hash changes, every pod is replaced, the new pods run the new configuration and
// consume; a message with an unexpected attribute is committed and counted as skipped, with
// no dead letter. No later step dead-letters that class, so the policy stays.
func (s *scenario) changeRetryPolicy(t *testing.T) {
	old := map[types.UID]bool{}
	for _, pp := range s.kubelet.running() {
		old[pp.pod.UID] = true
	}
	var dep appsv1.Deployment
	if err := s.cp.client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: controllers.ChildName(s.name)}, &dep); err != nil {
		t.Fatal(err)
	}
	oldHash := dep.Spec.Template.Annotations[controllers.AnnotationConfigHash]
	t.Log(`patch spec.retry to {maxAttempts: 5, initialBackoff: 200ms, maxBackoff: 5s} and spec.errorPolicy to {UnexpectedAttributes: skip}`)
	if err := s.patch(s.ctx, map[string]any{"spec": map[string]any{
		"retry":       map[string]any{"maxAttempts": 5, "initialBackoff": "200ms", "maxBackoff": "5s"},
		"errorPolicy": map[string]any{string(consumer.ClassUnexpectedAttributes): string(kafkasubv1alpha1.ErrorActionSkip)},
	}}); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "the Deployment's pod template to carry a new config hash", time.Minute, func(ctx context.Context) (bool, string, error) {
		if err := s.cp.client.Get(ctx, client.ObjectKeyFromObject(&dep), &dep); err != nil {
			return false, "", err
		}
		h := dep.Spec.Template.Annotations[controllers.AnnotationConfigHash]
		return h != "" && h != oldHash, h, nil
	})
	s.waitSubscriptionReady(t, 1)
	procs := s.waitConsumers(t, 1, func(pp *podProcess) error {
		if old[pp.pod.UID] {
			return errors.New("still an old pod")
		}
		return nil
	})
	for _, pp := range procs {
		r := pp.config.Retry
		if r.MaxAttempts != 5 || r.InitialBackoff.Duration != 200*time.Millisecond || r.MaxBackoff.Duration != 5*time.Second {
			t.Errorf("pod %s runs retry %+v, want maxAttempts 5, initialBackoff 200ms, maxBackoff 5s", pp.pod.Name, r)
		}
		if a := pp.config.ErrorPolicy[consumer.ClassUnexpectedAttributes]; a != consumer.ActionSkip {
			t.Errorf("pod %s runs errorPolicy %v, want %s: %s", pp.pod.Name, pp.config.ErrorPolicy, consumer.ClassUnexpectedAttributes, consumer.ActionSkip)
		}
	}
	first := s.products[0]
	// In order on partition 0: once the update is applied, the message before it is settled.
	s.produce(t, 0, `{"farewell": "bye"}`)
	s.produce(t, 0, fmt.Sprintf(`{"product_code": %q, "inventory_count": 41}`, first.Code))
	s.waitInventory(t, first.Code, 41)

	pp := procs[0]
	skipped, err := metric(s.ctx, pp, consumer.MetricMessages, fmt.Sprintf(`class=%q,outcome=%q`, consumer.ClassUnexpectedAttributes, consumer.OutcomeSkipped))
	must(t, err)
	cs, err := consumerStatus(s.ctx, pp)
	must(t, err)
	if skipped != 1 || cs.Messages.Skipped < 1 || cs.Messages.DeadLettered != 0 {
		t.Errorf("pod %s: %v skipped %s in %s, /status messages %+v; want 1 skipped, none dead-lettered", pp.pod.Name, skipped, consumer.ClassUnexpectedAttributes, consumer.MetricMessages, cs.Messages)
	}
	if recs := consumertest.ReadTopic(t, s.brokers, s.dlq, s.dlqSeen, 0); len(recs) != s.dlqSeen {
		t.Errorf("the dead-letter topic has %d records, want %d: a skipped message is not dead-lettered", len(recs), s.dlqSeen)
	}
	// Committed: the group's offset of partition 0 is past both messages.
	group := s.get(t).Status.ConsumerGroup
	s.waitFor(t, "the group's committed offset of partition 0 at its end", time.Minute, func(ctx context.Context) (bool, string, error) {
		committed, end, err := s.offsets(group, 0)
		return err == nil && committed == end, fmt.Sprintf("committed %d, end %d", committed, end), err
	})
	// The replaced pod's dead letters are no longer counted; the skip is the last error.
	s.waitStatus(t, "deadLetters.count 0 of the new pod, lastError the skipped UnexpectedAttributes", func(st *kafkasubv1alpha1.KafkaSubscriptionStatus) (bool, string) {
		e := st.LastError
		return st.DeadLetters != nil && st.DeadLetters.Count == 0 && e != nil && e.Class == string(consumer.ClassUnexpectedAttributes) && strings.Contains(e.Message, "farewell"),
			describeConsumerStatus(st)
	})
}

// offsets returns the group's committed offset of a partition of the topic and the
// partition's end.
func (s *scenario) offsets(group string, partition int32) (committed, end int64, err error) {
	offsets, err := s.admin.ListConsumerGroupOffsets(group, map[string][]int32{s.topic: {partition}})
	if err != nil {
		return 0, 0, err
	}
	b := offsets.GetBlock(s.topic, partition)
	if b == nil {
		return 0, 0, fmt.Errorf("no committed offset of %s/%d", s.topic, partition)
	}
	kc, err := sarama.NewClient(s.brokers, sarama.NewConfig())
	if err != nil {
		return 0, 0, err
	}
	defer kc.Close()
	end, err = kc.GetOffset(s.topic, partition, sarama.OffsetNewest)
	return b.Offset, end, err
}

// scaleToTwo sets two replicas: both consumers join the group, each gets a partition, and
// each applies the update produced to its partition.
func (s *scenario) scaleToTwo(t *testing.T) {
	if s.driver == consumer.DriverSQLite {
		err := s.patch(s.ctx, map[string]any{"spec": map[string]any{"replicas": 2}})
		if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "sqlite") {
			t.Fatalf("replicas 2 with sqlite: want the API to refuse it naming sqlite, got %v", err)
		}
		t.Logf("the API refuses two replicas for SQLite: %v", err)
		t.Skipf("two replicas need a shared database: set %s (hack/postgres.sh start prints one)", consumertest.EnvPostgresDSN)
	}
	t.Log("patch spec.replicas to 2")
	if err := s.patch(s.ctx, map[string]any{"spec": map[string]any{"replicas": 2}}); err != nil {
		t.Fatal(err)
	}
	s.waitSubscriptionReady(t, 2)
	procs := s.waitConsumers(t, 2, nil)
	var pdb policyv1.PodDisruptionBudget
	if err := s.cp.client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: controllers.ChildName(s.name)}, &pdb); err != nil {
		t.Errorf("with 2 replicas the PodDisruptionBudget: %v", err)
	}

	group := s.get(t).Status.ConsumerGroup
	s.waitFor(t, "two group members, each assigned a partition", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		groups, err := s.admin.DescribeConsumerGroups([]string{group})
		if err != nil || len(groups) != 1 {
			return false, "", err
		}
		g := groups[0]
		seen := []string{"state " + g.State}
		owned := map[int32]int{}
		for id, m := range g.Members {
			a, err := m.GetMemberAssignment()
			if err != nil || a == nil {
				return false, "", err
			}
			parts := a.Topics[s.topic]
			seen = append(seen, fmt.Sprintf("%s(%s): %v", id, m.ClientHost, parts))
			if len(parts) == 0 {
				return false, strings.Join(seen, ", "), nil
			}
			for _, p := range parts {
				owned[p]++
			}
		}
		return g.State == "Stable" && len(g.Members) == 2 && len(owned) == partitions, strings.Join(seen, ", "), nil
	})

	before := map[string]float64{}
	for _, pp := range procs {
		v, err := metric(s.ctx, pp, consumer.MetricMessages, `outcome="processed"`)
		if err != nil {
			t.Fatal(err)
		}
		before[pp.pod.Name] = v
	}
	for p := int32(0); p < partitions; p++ {
		s.produce(t, p, fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, s.products[1+p].Code, 100+p))
	}
	for p := int32(0); p < partitions; p++ {
		s.waitInventory(t, s.products[1+p].Code, int64(100+p))
	}
	s.waitFor(t, "each consumer to have processed an update", time.Minute, func(ctx context.Context) (bool, string, error) {
		var seen []string
		all := true
		for _, pp := range procs {
			v, err := metric(ctx, pp, consumer.MetricMessages, `outcome="processed"`)
			if err != nil {
				return false, "", err
			}
			seen = append(seen, fmt.Sprintf("%s: %v", pp.pod.Name, v-before[pp.pod.Name]))
			all = all && v > before[pp.pod.Name]
		}
		return all, strings.Join(seen, ", "), nil
	})
}

// replicasNow is the replica count the scale step left.
func (s *scenario) replicasNow(t *testing.T) int {
	ks := s.get(t)
	if ks.Spec.Replicas == nil {
		return 1
	}
	return int(*ks.Spec.Replicas)
}

// suspendAndResume sets spec.suspend: the Deployment scales to zero, every consumer stops
// (exit 0 on SIGTERM) and leaves the group; an update produced then waits in Kafka and is
// applied after resuming.
func (s *scenario) suspendAndResume(t *testing.T) {
	replicas := s.replicasNow(t)
	first := s.products[0]
	t.Log("patch spec.suspend to true")
	if err := s.patch(s.ctx, map[string]any{"spec": map[string]any{"suspend": true}}); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "Ready=False reason Suspended, Deployment at 0 replicas, no consumer running", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		var ks kafkasubv1alpha1.KafkaSubscription
		if err := s.cp.client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: s.name}, &ks); err != nil {
			return false, "", err
		}
		var dep appsv1.Deployment
		if err := s.cp.client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: controllers.ChildName(s.name)}, &dep); err != nil {
			return false, "", err
		}
		c := meta.FindStatusCondition(ks.Status.Conditions, kafkasubv1alpha1.ConditionReady)
		n := s.kubelet.processes()
		seen := fmt.Sprintf("Ready %v, deployment replicas %v/%d, %d consumer processes", c, dep.Spec.Replicas, dep.Status.Replicas, n)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == kafkasubv1alpha1.ReasonSuspended &&
			dep.Spec.Replicas != nil && *dep.Spec.Replicas == 0 && dep.Status.Replicas == 0 && n == 0, seen, nil
	})
	group := s.get(t).Status.ConsumerGroup
	s.waitFor(t, "the consumer group to have no members", time.Minute, func(ctx context.Context) (bool, string, error) {
		groups, err := s.admin.DescribeConsumerGroups([]string{group})
		if err != nil || len(groups) != 1 {
			return false, "", err
		}
		return len(groups[0].Members) == 0, fmt.Sprintf("state %s, %d members", groups[0].State, len(groups[0].Members)), nil
	})
	// No consumer runs to report: the status says so, and the lag is unknown.
	s.waitStatus(t, "ConsumersJoined=False (NoConsumers), DatabaseReady=Unknown (NoConsumers), no lag", func(st *kafkasubv1alpha1.KafkaSubscriptionStatus) (bool, string) {
		joined, seen := hasCondition(st, kafkasubv1alpha1.ConditionConsumersJoined, metav1.ConditionFalse, kafkasubv1alpha1.ReasonNoConsumers)
		db, _ := hasCondition(st, kafkasubv1alpha1.ConditionDatabaseReady, metav1.ConditionUnknown, kafkasubv1alpha1.ReasonNoConsumers)
		return joined && db && st.Lag == nil, seen + "; " + describeConsumerStatus(st)
	})
	before, err := s.inventoryOf(s.ctx, first.Code)
	if err != nil {
		t.Fatal(err)
	}
	s.produce(t, 0, fmt.Sprintf(`{"product_code": %q, "inventory_count": 55}`, first.Code))
	// Nothing runs that could consume it: the record waits in Kafka, uncommitted.
	committed, end, err := s.offsets(group, 0)
	if err != nil {
		t.Fatal(err)
	}
	if committed >= end {
		t.Fatalf("while suspended the group committed offset %d of %s/0, want below the end %d", committed, s.topic, end)
	}
	if got, _ := s.inventoryOf(s.ctx, first.Code); got != before {
		t.Fatalf("inventory of %s changed to %d while suspended", first.Code, got)
	}
	t.Logf("suspended: group committed offset %d, end offset %d: the update waits in Kafka", committed, end)
	s.showSubscription(t, "suspended, an update waiting", s.ns, s.name)

	t.Log("patch spec.suspend to false")
	if err := s.patch(s.ctx, map[string]any{"spec": map[string]any{"suspend": false}}); err != nil {
		t.Fatal(err)
	}
	s.waitSubscriptionReady(t, int32(replicas))
	s.waitConsumers(t, replicas, nil)
	s.waitInventory(t, first.Code, 55)
	s.waitStatus(t, "ConsumersJoined=True, DatabaseReady=True, lag 0 after resuming", consumersHealthy)
}

// deleteSubscription deletes the subscription; the garbage collector removes its children
// and the consumers stop.
func (s *scenario) deleteSubscription(t *testing.T) {
	ks := s.get(t)
	if err := s.cp.client.Delete(s.ctx, ks); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: s.ns, Name: controllers.ChildName(s.name)}
	s.waitFor(t, "the subscription, its Deployment, ConfigMap, Service, PodDisruptionBudget, Pods and consumers gone", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		var left []string
		for _, o := range []client.Object{&kafkasubv1alpha1.KafkaSubscription{}, &appsv1.Deployment{}, &corev1.ConfigMap{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{}} {
			k := key
			if _, ok := o.(*kafkasubv1alpha1.KafkaSubscription); ok {
				k.Name = s.name
			}
			err := s.cp.client.Get(ctx, k, o)
			if err == nil {
				left = append(left, fmt.Sprintf("%T", o))
			} else if !apierrors.IsNotFound(err) {
				return false, "", err
			}
		}
		var pods corev1.PodList
		if err := s.cp.client.List(ctx, &pods, client.InNamespace(s.ns)); err != nil {
			return false, "", err
		}
		if len(pods.Items) > 0 {
			left = append(left, fmt.Sprintf("%d pods", len(pods.Items)))
		}
		if n := s.kubelet.processes(); n > 0 {
			left = append(left, fmt.Sprintf("%d consumer processes", n))
		}
		return len(left) == 0, strings.Join(left, ", "), nil
	})
	// Every consumer that was stopped exited 0 on SIGTERM (kubelet.check reports others).
	if err := s.kubelet.check(); err != nil {
		t.Fatal(err)
	}
	s.kubelet.mu.Lock()
	stopped := len(s.kubelet.stopped)
	s.kubelet.mu.Unlock()
	t.Logf("%d consumer processes ran and stopped cleanly over the scenario", stopped)

	// The DSN and the SASL password reach the consumers only through their environment.
	var logs []*process
	logs = append(logs, s.manager)
	for _, pp := range s.kubelet.stopped {
		logs = append(logs, pp.proc)
	}
	for _, p := range logs {
		text := p.logText()
		for i, secret := range s.secrets {
			if strings.Contains(text, secret) {
				t.Errorf("secret value #%d (0 is the database DSN) appears in the log of %s (%s)", i, p.name, p.logPath)
			}
		}
	}

	// The manager ran under config/rbac alone; a denied request (an event it could not
	// record, a child it could not read) shows in its log.
	for _, line := range strings.Split(s.manager.logText(), "\n") {
		if strings.Contains(line, "forbidden") {
			t.Errorf("the manager was refused a request under the ClusterRole of config/rbac: %s", line)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
