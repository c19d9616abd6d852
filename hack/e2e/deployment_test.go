package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestControlPlaneRunsDeployments proves the local control plane behaves like a cluster
// for what the operator relies on: a Deployment gets a ReplicaSet and Pods (controller
// manager), the Pods land on the fake node (scheduler) and turn Running and Ready (kwok), and
// deleting the Deployment garbage-collects its ReplicaSet and Pods.
func TestControlPlaneRunsDeployments(t *testing.T) {
	cp := requireControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-plain-deployment"}}
	if err := cp.client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	labels := map[string]string{"app": "plain"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns.Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "main",
					Image: "example.invalid/never-pulled:1", // kwok runs nothing
				}}},
			},
		},
	}
	t.Logf("STEP create Deployment %s/%s with 2 replicas", dep.Namespace, dep.Name)
	if err := cp.client.Create(ctx, dep); err != nil {
		t.Fatalf("create deployment: %v", err)
	}

	t.Log("STEP wait for 2/2 available replicas")
	if err := cp.waitFor(ctx, "deployment 2/2 available", func(ctx context.Context) (bool, string, error) {
		var d appsv1.Deployment
		if err := cp.client.Get(ctx, client.ObjectKeyFromObject(dep), &d); err != nil {
			return false, "", err
		}
		return d.Status.AvailableReplicas == 2 && d.Status.ReadyReplicas == 2,
			fmt.Sprintf("replicas=%d ready=%d available=%d", d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas), nil
	}); err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	if err := cp.client.List(ctx, &pods, client.InNamespace(ns.Name), client.MatchingLabels(labels)); err != nil {
		t.Fatalf("list pods: %v", err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("want 2 pods, got %d", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != nodeName || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: node %q phase %s, want node %q phase Running", p.Name, p.Spec.NodeName, p.Status.Phase, nodeName)
		}
	}
	var rsList appsv1.ReplicaSetList
	if err := cp.client.List(ctx, &rsList, client.InNamespace(ns.Name)); err != nil {
		t.Fatalf("list replicasets: %v", err)
	}
	if len(rsList.Items) != 1 {
		t.Fatalf("want 1 replicaset, got %d", len(rsList.Items))
	}

	t.Log("STEP delete the Deployment and wait for its ReplicaSet and Pods to be garbage-collected")
	if err := cp.client.Delete(ctx, dep); err != nil {
		t.Fatalf("delete deployment: %v", err)
	}
	if err := cp.waitFor(ctx, "replicaset and pods garbage-collected", func(ctx context.Context) (bool, string, error) {
		var rs appsv1.ReplicaSetList
		var ps corev1.PodList
		if err := cp.client.List(ctx, &rs, client.InNamespace(ns.Name)); err != nil {
			return false, "", err
		}
		if err := cp.client.List(ctx, &ps, client.InNamespace(ns.Name)); err != nil {
			return false, "", err
		}
		return len(rs.Items) == 0 && len(ps.Items) == 0, fmt.Sprintf("%d replicasets, %d pods", len(rs.Items), len(ps.Items)), nil
	}); err != nil {
		t.Fatal(err)
	}
}
