package charts

import (
	"context"
	"fmt"
	"os"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestOperatorHasNoAccessToSecrets binds the operator's rules to a user of its own, as
// each install grants them (config/rbac's generated ClusterRole, the chart cluster-wide,
// the chart restricted to watchNamespaces), and asks the API server's authorizer
// (SubjectAccessReview) whether that user may get, list or watch Secrets: every answer
// must be no, in the watched namespace and cluster-wide. A positive answer for what the
// operator does need (listing pods, patching a subscription's status) shows the binding
// is in effect.
func TestOperatorHasNoAccessToSecrets(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test ./charts/`")
	}
	_, cfg := startEnvtest(t, &envtest.Environment{})
	admin, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "team-a"
	for _, n := range []string{ns, releaseNamespace} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}

	installs := []struct {
		name  string
		roles func(t *testing.T) []*unstructured.Unstructured
	}{
		{"config/rbac (kustomize, make deploy)", func(t *testing.T) []*unstructured.Unstructured {
			return decodeFile(t, RoleSourceFile)
		}},
		{"chart, cluster-wide", func(t *testing.T) []*unstructured.Unstructured {
			return mustRender(t, nil).objects
		}},
		{"chart, watchNamespaces [team-a]", func(t *testing.T) []*unstructured.Unstructured {
			return mustRender(t, map[string]any{"watchNamespaces": []any{ns}}).objects
		}},
	}
	for i, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			user := fmt.Sprintf("operator-%d", i)
			bound := 0
			for _, o := range in.roles(t) {
				switch o.GetKind() {
				case "ClusterRole":
					var role rbacv1.ClusterRole
					toTyped(t, o, &role)
					role.Name = fmt.Sprintf("%s-%d", role.Name, i)
					create(ctx, t, admin, &role)
					create(ctx, t, admin, &rbacv1.ClusterRoleBinding{
						ObjectMeta: metav1.ObjectMeta{Name: role.Name},
						RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
						Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
					})
					bound++
				case "Role":
					var role rbacv1.Role
					toTyped(t, o, &role)
					role.Name = fmt.Sprintf("%s-%d", role.Name, i)
					create(ctx, t, admin, &role)
					create(ctx, t, admin, &rbacv1.RoleBinding{
						ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: role.Namespace},
						RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
						Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
					})
					bound++
				}
			}
			if bound == 0 {
				t.Fatal("no ClusterRole or Role to bind")
			}

			ask := func(namespace, verb, group, resource, subresource string) (bool, string) {
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: user,
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: namespace, Verb: verb, Group: group, Resource: resource, Subresource: subresource,
					},
				}}
				if err := admin.Create(ctx, sar); err != nil {
					t.Fatal(err)
				}
				return sar.Status.Allowed, sar.Status.Reason
			}
			for _, namespace := range []string{ns, ""} {
				for _, verb := range []string{"get", "list", "watch"} {
					allowed, reason := ask(namespace, verb, "", "secrets", "")
					t.Logf("%s may %s secrets in namespace %q: %v %s", user, verb, namespace, allowed, reason)
					if allowed {
						t.Errorf("%s may %s secrets in namespace %q (%s); the operator must have no access to Secrets", user, verb, namespace, reason)
					}
				}
			}
			for _, want := range []struct{ verb, group, resource, subresource string }{
				{"list", "", "pods", ""},
				{"watch", "", "events", ""},
				{"patch", "kafkasub.io", "kafkasubscriptions", "status"},
			} {
				if allowed, reason := ask(ns, want.verb, want.group, want.resource, want.subresource); !allowed {
					t.Errorf("%s may not %s %s %s in %s (%s): the binding is not in effect, so the denials above prove nothing",
						user, want.verb, want.resource, want.subresource, ns, reason)
				}
			}
		})
	}
}

func create(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}
