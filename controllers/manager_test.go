/*
Copyright 2026 The kafkasub Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
)

func TestManagerCommandRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"An empty consumer image is rejected", []string{"--consumer-image="}, "--consumer-image must not be empty"},
		{"Zero concurrent reconciles are rejected", []string{"--max-concurrent-reconciles=0"}, "--max-concurrent-reconciles must be at least 1"},
		{"An unknown flag is rejected", []string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		{"A watch namespace that is no namespace name is rejected", []string{"--watch-namespaces=shop,Bad_NS"}, `--watch-namespaces: "Bad_NS" is not a namespace name`},
		{"Arguments are rejected", []string{"extra"}, `unknown command "extra"`},
		{"A profiling address that is no address is rejected", []string{"--pprof-addr=a:b:c"}, `--pprof-addr: "a:b:c" is not host:port or a port`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := NewManagerCommand()
			cmd.SetArgs(tc.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestManagerCommandFlags(t *testing.T) {
	t.Setenv(EnvConsumerImage, "registry.example/kafkasub:from-env")
	cmd := NewManagerCommand()
	for _, name := range []string{FlagMetricsBindAddress, FlagHealthProbeBindAddress, FlagLeaderElect, FlagLeaderElectionID,
		FlagLeaderElectionNamespace, FlagConsumerImage, FlagMaxConcurrentReconciles, FlagWatchNamespaces, FlagPprofAddr, "zap-log-level", "zap-devel", "kubeconfig"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("the manager has no --%s flag", name)
		}
	}
	if got := cmd.Flags().Lookup(FlagConsumerImage).DefValue; got != "registry.example/kafkasub:from-env" {
		t.Errorf("--%s defaults to %q, want the value of $%s", FlagConsumerImage, got, EnvConsumerImage)
	}
	if err := cmd.ParseFlags([]string{"--leader-elect", "--zap-log-level=debug", "--consumer-image=x:1"}); err != nil {
		t.Errorf("parse flags: %v", err)
	}
}

// TestManagerCommandWithGeneratedRBAC runs `kafkasub manager --watch-namespaces=a,b` as a
// user that has only the ClusterRole controller-gen generated (config/rbac/role.yaml),
// bound in those two namespaces, and a leader election Role: it must elect itself, serve
// its probes, and reconcile the subscriptions of both namespaces with nothing more.
func TestManagerCommandWithGeneratedRBAC(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("needs a kube-apiserver and etcd: set KUBEBUILDER_ASSETS=$(hack/envtest.sh)")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	restCfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// The operator's identity: the generated ClusterRole bound in the watched namespaces
	// only, and leases and events in its own namespace for leader election.
	const user, opNS = "kafkasub-operator", "kafkasub-system"
	watched := []string{"shop", "warehouse"}
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	must(err)
	role := &rbacv1.ClusterRole{}
	must(yaml.UnmarshalStrict(data, role))
	must(admin.Create(ctx, role))
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	for _, ns := range watched {
		must(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
		must(admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "kafkasub-manager", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   subject,
		}))
	}
	must(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}}))
	must(admin.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "leader-election", Namespace: opNS},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}))
	must(admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "leader-election", Namespace: opNS},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "leader-election"},
		Subjects:   subject,
	}))
	op, err := env.AddUser(envtest.User{Name: user}, nil)
	must(err)
	kubeconfig, err := op.KubeConfig()
	must(err)
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	must(os.WriteFile(kubeconfigPath, kubeconfig, 0o600))

	healthAddr, pprofAddr := freeAddr(t), freeAddr(t)
	cmd := NewManagerCommand()
	cmd.SetArgs([]string{
		"--kubeconfig=" + kubeconfigPath,
		"--leader-elect", "--leader-election-namespace=" + opNS,
		"--metrics-bind-address=0", "--health-probe-bind-address=" + healthAddr,
		"--consumer-image=registry.example/kafkasub:cmd",
		"--watch-namespaces=" + strings.Join(watched, ","),
		"--pprof-addr=" + pprofAddr,
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("the manager returned %v", err)
		}
	})

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: watched[0]}}
	k := testSubscription()
	k.ObjectMeta = metav1.ObjectMeta{Name: "inventory", Namespace: ns.Name}
	must(admin.Create(ctx, k))
	other := testSubscription()
	other.ObjectMeta = metav1.ObjectMeta{Name: "stock", Namespace: watched[1]}
	must(admin.Create(ctx, other))

	eventually(t, "the manager serves /healthz and /readyz", func() error {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + healthAddr + p)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", p, resp.Status)
			}
		}
		return nil
	})
	eventually(t, "the manager serves Go profiles at --pprof-addr", func() error {
		resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/debug/pprof/goroutine: %s", resp.Status)
		}
		return nil
	})
	eventually(t, "the manager holds the leader election Lease", func() error {
		lease := &coordinationv1.Lease{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: opNS, Name: DefaultLeaderElectionID}, lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return errors.New("no holder")
		}
		return nil
	})
	eventually(t, "the second watched namespace is reconciled too", func() error {
		return admin.Get(ctx, client.ObjectKey{Namespace: other.Namespace, Name: ChildName(other.Name)}, &appsv1.Deployment{})
	})
	eventually(t, "the second subscription has a PodDisruptionBudget, then is suspended", func() error {
		pdbKey := client.ObjectKey{Namespace: other.Namespace, Name: ChildName(other.Name)}
		if err := admin.Get(ctx, pdbKey, &policyv1.PodDisruptionBudget{}); err != nil {
			return err
		}
		got := &kafkasubv1alpha1.KafkaSubscription{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(other), got); err != nil {
			return err
		}
		patch := client.MergeFrom(got.DeepCopy())
		got.Spec.Suspend = true
		if err := admin.Patch(ctx, got, patch); err != nil {
			return err
		}
		return nil
	})
	eventually(t, "the PodDisruptionBudget of the suspended subscription is gone", func() error {
		err := admin.Get(ctx, client.ObjectKey{Namespace: other.Namespace, Name: ChildName(other.Name)}, &policyv1.PodDisruptionBudget{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
	eventually(t, "the subscription is rendered with the flag's image", func() error {
		d := &appsv1.Deployment{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: ChildName(k.Name)}, d); err != nil {
			return err
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example/kafkasub:cmd" {
			return fmt.Errorf("image %q", img)
		}
		return nil
	})
	// The kubelet's report of a missing Secret, on a consumer pod: the operator reads it
	// with the generated role, which grants nothing on Secrets.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: ChildName(k.Name) + "-abc12", Namespace: ns.Name, Labels: StandardLabels(k)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Image: "registry.example/kafkasub:cmd"}}},
	}
	must(admin.Create(ctx, pod))
	setState := func(state corev1.ContainerState) {
		eventually(t, "setting the pod's container state", func() error {
			if err := admin.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
				return err
			}
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, Image: "registry.example/kafkasub:cmd", State: state}}
			return admin.Status().Update(ctx, pod)
		})
	}
	setState(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: `secret "shop-db" not found`}})
	eventually(t, "the subscription reports the missing Secret its pod's kubelet reports", func() error {
		got := &kafkasubv1alpha1.KafkaSubscription{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(k), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, kafkasubv1alpha1.ConditionDegraded)
		if c == nil || c.Reason != kafkasubv1alpha1.ReasonSecretNotFound || !strings.Contains(c.Message, `Secret "shop-db" (key "dsn"`) {
			return fmt.Errorf("degraded = %+v", c)
		}
		return nil
	})
	setState(corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}})
	eventually(t, "the pod starting clears Degraded and the events were recorded", func() error {
		got := &kafkasubv1alpha1.KafkaSubscription{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(k), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, kafkasubv1alpha1.ConditionDegraded)
		if c == nil || c.Reason != kafkasubv1alpha1.ReasonAsExpected {
			return fmt.Errorf("degraded = %+v", c)
		}
		evs := &eventsv1.EventList{}
		if err := admin.List(ctx, evs, client.InNamespace(ns.Name)); err != nil {
			return err
		}
		reasons := map[string]bool{}
		for _, e := range evs.Items {
			reasons[e.Reason] = true
		}
		if !reasons[EventCreated] || !reasons[EventSecretNotFound] || !reasons[EventSecretsFound] {
			return fmt.Errorf("events %v", reasons)
		}
		return nil
	})
}

// eventually retries check until it succeeds or a generous bound passes; the bound is a
// safety net, not an assertion about speed.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
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
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
