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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
)

// FieldManager is the one server-side apply field manager of every object the operator writes.
const FieldManager = "kafkasub-operator"

// ControllerName names the controller in logs, metrics and as the events' reporting controller.
const ControllerName = "kafkasubscription"

// secretIndex indexes KafkaSubscriptions by the names of the Secrets they reference.
const secretIndex = ".spec.secretNames"

// Event reasons on a KafkaSubscription.
const (
	EventCreated        = "Created"
	EventUpdated        = "Updated"
	EventDeleted        = "Deleted"
	EventApplyFailed    = "ApplyFailed"
	EventInvalidSpec    = "InvalidSpec"
	EventSecretNotFound = "SecretNotFound"
	EventSecretsFound   = "SecretsFound"
)

// Log messages.
const (
	logApplied         = "Applied child object"
	logDeletedPDB      = "Deleted PodDisruptionBudget that is no longer needed"
	logStatusUpdated   = "Updated status"
	logInvalidSpec     = "Spec cannot be rendered"
	logSecretsNotFound = "Referenced Secrets not found"
)

// KafkaSubscriptionReconciler turns a KafkaSubscription into a ConfigMap, a Deployment, a
// metrics Service and, with more than one replica, a PodDisruptionBudget.
type KafkaSubscriptionReconciler struct {
	client.Client
	// Recorder emits events on the subscriptions.
	Recorder recorder.EventRecorder
	// Options are the manager-wide builder inputs (the default consumer image).
	Options BuildOptions
}

// RBAC, least privilege: children are written only with server-side apply (create, patch)
// and deleted by the garbage collector, except a PodDisruptionBudget that is no longer
// wanted; the status is patched; finalizers/update lets the owner references block owner
// deletion. The operator reads Secrets' metadata only (to report a missing one); it never
// reads a value and never writes a Secret. Kubernetes RBAC cannot grant metadata alone, so
// these are the read verbs, and the code only ever asks for PartialObjectMetadata.
//
// +kubebuilder:rbac:groups=kafkasub.io,resources=kafkasubscriptions,verbs=get;list;watch
// +kubebuilder:rbac:groups=kafkasub.io,resources=kafkasubscriptions/status,verbs=get;patch
// +kubebuilder:rbac:groups=kafkasub.io,resources=kafkasubscriptions/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings the children of one KafkaSubscription to their desired state and
// writes its status once, in a deferred step, only when it changed.
func (r *KafkaSubscriptionReconciler) Reconcile(ctx context.Context, req reconcile.Request) (_ reconcile.Result, retErr error) {
	logger := log.FromContext(ctx)

	ksub := &kafkasubv1alpha1.KafkaSubscription{}
	if err := r.Get(ctx, req.NamespacedName, ksub); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !ksub.DeletionTimestamp.IsZero() {
		// The garbage collector removes the children through their owner references.
		return reconcile.Result{}, nil
	}
	logger = logger.WithValues("generation", ksub.Generation)
	ctx = log.IntoContext(ctx, logger)

	var obs Observation
	defer func() {
		if err := r.writeStatus(ctx, ksub, obs); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()

	missing, versions, err := r.observeSecrets(ctx, ksub)
	if err != nil {
		return reconcile.Result{}, err
	}
	obs.MissingSecrets = missing

	opts := r.Options
	opts.SecretVersions = versions
	desired, err := BuildDesired(ksub, opts)
	if err != nil {
		// A spec change triggers the next reconcile; retrying cannot help.
		obs.InvalidSpec = err
		logger.Info(logInvalidSpec, "reason", err.Error())
		r.Recorder.Eventf(ksub, nil, corev1.EventTypeWarning, EventInvalidSpec, "Render", "%s", err.Error())
		return reconcile.Result{}, nil
	}

	existing := &appsv1.Deployment{}
	err = r.Get(ctx, client.ObjectKeyFromObject(desired.Deployment), existing)
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("get Deployment %s: %w", desired.Deployment.Name, err)
	}

	for _, obj := range desired.Objects() {
		applied, err := r.apply(ctx, obj)
		if err != nil {
			obs.ApplyError = err
			r.Recorder.Eventf(ksub, nil, corev1.EventTypeWarning, EventApplyFailed, "Apply", "%s", err.Error())
			return reconcile.Result{}, err
		}
		if obj == client.Object(desired.Deployment) {
			dep := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(applied.Object, dep); err != nil {
				return reconcile.Result{}, fmt.Errorf("read applied Deployment: %w", err)
			}
			obs.Deployment = dep
			switch {
			case existing == nil:
				r.Recorder.Eventf(ksub, dep, corev1.EventTypeNormal, EventCreated, "Apply",
					"Created Deployment %s with %d replicas", dep.Name, *dep.Spec.Replicas)
			case existing.ResourceVersion != dep.ResourceVersion && existing.Generation != dep.Generation:
				r.Recorder.Eventf(ksub, dep, corev1.EventTypeNormal, EventUpdated, "Apply",
					"Updated Deployment %s (config %s, %d replicas)", dep.Name, shortHash(desired.ConfigHash), *dep.Spec.Replicas)
			}
		}
	}

	if desired.PodDisruptionBudget == nil {
		if err := r.deleteStalePDB(ctx, ksub); err != nil {
			obs.ApplyError = err
			return reconcile.Result{}, err
		}
	}
	obs.Complete = true
	return reconcile.Result{}, nil
}

// apply server-side applies obj under FieldManager, taking over any field someone else
// changed: a hand edit of a managed field is reverted.
func (r *KafkaSubscriptionReconciler) apply(ctx context.Context, obj client.Object) (*unstructured.Unstructured, error) {
	u, err := toApplyObject(obj)
	if err != nil {
		return nil, err
	}
	gvk := u.GroupVersionKind()
	ac := client.ApplyConfigurationFromUnstructured(u)
	if err := r.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	log.FromContext(ctx).V(1).Info(logApplied, "kind", gvk.Kind, "name", obj.GetName(), "resourceVersion", u.GetResourceVersion())
	return u, nil
}

// toApplyObject converts a typed object to the unstructured form of an apply request,
// without the null and empty fields a typed Go struct always has (creationTimestamp,
// status), so the operator owns only the fields it sets.
func toApplyObject(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %s to unstructured: %w", obj.GetName(), err)
	}
	delete(m, "status")
	pruneNulls(m)
	return &unstructured.Unstructured{Object: m}, nil
}

// pruneNulls removes null values from nested maps.
func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(t)
		case []any:
			for _, e := range t {
				if em, ok := e.(map[string]any); ok {
					pruneNulls(em)
				}
			}
		}
	}
}

// deleteStalePDB deletes the subscription's PodDisruptionBudget once it is no longer
// wanted (one replica or suspended). A PDB that the subscription does not control is left alone.
func (r *KafkaSubscriptionReconciler) deleteStalePDB(ctx context.Context, ksub *kafkasubv1alpha1.KafkaSubscription) error {
	pdb := &policyv1.PodDisruptionBudget{}
	err := r.Get(ctx, types.NamespacedName{Namespace: ksub.Namespace, Name: ChildName(ksub.Name)}, pdb)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get PodDisruptionBudget %s: %w", ChildName(ksub.Name), err)
	}
	if !metav1.IsControlledBy(pdb, ksub) {
		return nil
	}
	if err := r.Delete(ctx, pdb, client.Preconditions{UID: &pdb.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete PodDisruptionBudget %s: %w", pdb.Name, err)
	}
	log.FromContext(ctx).Info(logDeletedPDB, "name", pdb.Name)
	r.Recorder.Eventf(ksub, pdb, corev1.EventTypeNormal, EventDeleted, "Delete",
		"Deleted PodDisruptionBudget %s: at most one replica runs", pdb.Name)
	return nil
}

// observeSecrets returns the referenced Secrets that do not exist and the resourceVersions
// of those that do, looking at metadata only.
func (r *KafkaSubscriptionReconciler) observeSecrets(ctx context.Context, ksub *kafkasubv1alpha1.KafkaSubscription) ([]SecretUse, map[string]string, error) {
	var missing []SecretUse
	versions := map[string]string{}
	for _, use := range ReferencedSecrets(ksub) {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		err := r.Get(ctx, types.NamespacedName{Namespace: ksub.Namespace, Name: use.Name}, m)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, use)
		case err != nil:
			return nil, nil, fmt.Errorf("look up Secret %s: %w", use.Name, err)
		default:
			versions[use.Name] = m.ResourceVersion
		}
	}
	return missing, versions, nil
}

// writeStatus computes the status and writes it only when it changed, with an event when
// a Secret goes missing or comes back.
func (r *KafkaSubscriptionReconciler) writeStatus(ctx context.Context, ksub *kafkasubv1alpha1.KafkaSubscription, obs Observation) error {
	status := ComputeStatus(ksub, obs)
	if equality.Semantic.DeepEqual(ksub.Status, status) {
		return nil
	}
	wasMissing := meta.IsStatusConditionPresentAndEqual(ksub.Status.Conditions, kafkasubv1alpha1.ConditionDegraded, metav1.ConditionTrue) &&
		meta.FindStatusCondition(ksub.Status.Conditions, kafkasubv1alpha1.ConditionDegraded).Reason == kafkasubv1alpha1.ReasonSecretNotFound
	isMissing := len(obs.MissingSecrets) > 0
	if isMissing && !wasMissing {
		log.FromContext(ctx).Info(logSecretsNotFound, "message", MissingSecretsMessage(obs.MissingSecrets))
		r.Recorder.Eventf(ksub, nil, corev1.EventTypeWarning, EventSecretNotFound, "CheckSecrets", "%s", MissingSecretsMessage(obs.MissingSecrets))
	}
	if wasMissing && !isMissing && obs.InvalidSpec == nil {
		r.Recorder.Eventf(ksub, nil, corev1.EventTypeNormal, EventSecretsFound, "CheckSecrets", "Every referenced Secret exists")
	}

	base := ksub.DeepCopy()
	ksub.Status = status
	if err := r.Status().Patch(ctx, ksub, client.MergeFrom(base)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update status: %w", err)
	}
	log.FromContext(ctx).V(1).Info(logStatusUpdated)
	return nil
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// secretNames is the index function of secretIndex.
func secretNames(obj client.Object) []string {
	ksub, ok := obj.(*kafkasubv1alpha1.KafkaSubscription)
	if !ok {
		return nil
	}
	uses := ReferencedSecrets(ksub)
	names := make([]string, len(uses))
	for i, u := range uses {
		names[i] = u.Name
	}
	return names
}

// SetupWithManager registers the controller: it watches KafkaSubscriptions, the children
// they own, and the metadata of Secrets (a Secret created, changed or deleted requeues every
// subscription in its namespace that references it).
func (r *KafkaSubscriptionReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &kafkasubv1alpha1.KafkaSubscription{}, secretIndex, secretNames); err != nil {
		return fmt.Errorf("index KafkaSubscriptions by Secret: %w", err)
	}
	secretToSubscriptions := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		list := &kafkasubv1alpha1.KafkaSubscriptionList{}
		if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{secretIndex: obj.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "List KafkaSubscriptions for Secret", "secret", obj.GetName())
			return nil
		}
		reqs := make([]reconcile.Request, len(list.Items))
		for i := range list.Items {
			reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
		}
		return reqs
	})
	// A Secret's existence and its resourceVersion matter (a change rolls the pods); a
	// resync that changes nothing is ignored.
	changed := predicate.ResourceVersionChangedPredicate{}

	return ctrl.NewControllerManagedBy(mgr).
		For(&kafkasubv1alpha1.KafkaSubscription{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		WatchesMetadata(&corev1.Secret{}, secretToSubscriptions, builder.WithPredicates(changed)).
		Named(ControllerName).
		Complete(r)
}
