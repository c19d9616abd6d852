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
	"reflect"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
)

// FieldManager is the one server-side apply field manager of every object the operator writes.
const FieldManager = "kafkasub-operator"

// ControllerName names the controller in logs, metrics and as the events' reporting controller.
const ControllerName = "kafkasubscription"

// Event reasons on a KafkaSubscription.
const (
	EventCreated        = "Created"
	EventUpdated        = "Updated"
	EventDeleted        = "Deleted"
	EventApplyFailed    = "ApplyFailed"
	EventInvalidSpec    = "InvalidSpec"
	EventSecretNotFound = "SecretNotFound"
	EventSecretsFound   = "SecretsFound"
	// A consumer that cannot run is reported under the reason of the Degraded condition.
	EventHandlerNotRegistered = kafkasubv1alpha1.ReasonHandlerNotRegistered
	EventConsumerCrashing     = kafkasubv1alpha1.ReasonConsumerCrashing
)

// Log messages.
const (
	logApplied            = "Applied child object"
	logDeletedPDB         = "Deleted PodDisruptionBudget that is no longer needed"
	logReplacedService    = "Deleted metrics Service with a cluster IP to recreate it headless"
	logStatusUpdated      = "Updated status"
	logInvalidSpec        = "Spec cannot be rendered"
	logSecretsNotFound    = "Consumer pods report referenced Secrets or keys not found"
	logConsumerFailed     = "A consumer pod cannot run"
	logListPodsForRequest = "List KafkaSubscription of Pod"
)

// Messages of events.
const (
	msgCreatedDeployment = "Created Deployment %s with %d replicas"
	msgUpdatedDeployment = "Updated Deployment %s (config %s, %d replicas)"
	msgDeletedPDB        = "Deleted PodDisruptionBudget %s: at most one replica runs"
	msgSecretsFound      = "No consumer pod reports a missing Secret any more"
	msgConsumerFailed    = "Consumer pod %s: %s"
)

// KafkaSubscriptionReconciler turns a KafkaSubscription into a ConfigMap, a Deployment, a
// metrics Service and, with more than one replica, a PodDisruptionBudget.
type KafkaSubscriptionReconciler struct {
	client.Client
	// Recorder emits events on the subscriptions.
	Recorder recorder.EventRecorder
	// Options are the manager-wide builder inputs (the default consumer image).
	Options BuildOptions
	// Consumers polls the consumer pods' status endpoints; nil leaves the consumer fields
	// of the status alone.
	Consumers *ConsumerPoller

	// statusWrites remembers, by subscription, when the last status was written and the
	// resourceVersion it was written over, so that a reconcile reading the subscription
	// from a cache that has not seen that write yet does not write again.
	statusWrites sync.Map // types.NamespacedName -> statusWrite
}

// statusWrite is a status write of the reconciler: over which resourceVersion, and when.
type statusWrite struct {
	overResourceVersion string
	at                  time.Time
}

// lagWritePolls is how many status poll intervals a change of the lag alone waits after the
// subscription's last status write (LagChangeOnly): a subscription busy but keeping up
// writes its lag at most once a minute with the default interval, not at every poll.
const lagWritePolls = 6

// RBAC, least privilege: children are written only with server-side apply (create, patch)
// and deleted by the garbage collector, except a PodDisruptionBudget that is no longer
// wanted and a metrics Service from before it was headless (a cluster IP cannot be
// removed in place); the status is patched; finalizers/update lets the owner references
// block owner deletion. No permission on Secrets at all: the consumer pods get them from
// their kubelet, and what the kubelet could not find shows in the pods' status and their
// FailedMount events, which the operator reads.
//
// +kubebuilder:rbac:groups=kafkasub.io,resources=kafkasubscriptions,verbs=get;list;watch
// +kubebuilder:rbac:groups=kafkasub.io,resources=kafkasubscriptions/status,verbs=get;patch
// +kubebuilder:rbac:groups=kafkasub.io,resources=kafkasubscriptions/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings the children of one KafkaSubscription to their desired state and
// writes its status once, in a deferred step, only when it changed. A child is applied
// only when its desired state differs from the live one in the cache.
func (r *KafkaSubscriptionReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, retErr error) {
	logger := log.FromContext(ctx)

	ksub := &kafkasubv1alpha1.KafkaSubscription{}
	if err := r.Get(ctx, req.NamespacedName, ksub); err != nil {
		if apierrors.IsNotFound(err) {
			r.statusWrites.Delete(req.NamespacedName)
			if r.Consumers != nil {
				r.Consumers.Forget(req.NamespacedName)
			}
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !ksub.DeletionTimestamp.IsZero() {
		// The garbage collector removes the children through their owner references.
		return reconcile.Result{}, nil
	}
	logger = logger.WithValues("generation", ksub.Generation)
	ctx = log.IntoContext(ctx, logger)

	var obs Observation
	var pollAgain time.Duration
	defer func() {
		if err := r.writeStatus(ctx, ksub, obs); err != nil {
			retErr = errors.Join(retErr, err)
		}
		if retErr == nil && res.RequeueAfter == 0 {
			res.RequeueAfter = pollAgain // the next poll of the consumer pods
		}
	}()

	pods, err := r.observePods(ctx, ksub, &obs)
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.Consumers != nil {
		obs.Consumers, pollAgain = r.Consumers.Observe(ctx, req.NamespacedName, pods)
	}

	desired, err := BuildDesired(ksub, r.Options)
	if err != nil {
		// A spec change triggers the next reconcile; retrying cannot help.
		obs.InvalidSpec = err
		logger.Info(logInvalidSpec, "reason", err.Error())
		r.Recorder.Eventf(ksub, nil, corev1.EventTypeWarning, EventInvalidSpec, "Render", "%s", err.Error())
		return reconcile.Result{}, nil
	}

	for _, obj := range desired.Objects() {
		live, err := r.live(ctx, obj)
		if err != nil {
			return reconcile.Result{}, err
		}
		if svc, ok := live.(*corev1.Service); ok && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			if err := r.replaceService(ctx, ksub, svc); err != nil {
				obs.ApplyError = err
				return reconcile.Result{}, err
			}
			live = nil
		}
		upToDate, err := isUpToDate(obj, live)
		if err != nil {
			return reconcile.Result{}, err
		}
		dep, isDeployment := obj.(*appsv1.Deployment)
		if upToDate {
			if isDeployment {
				obs.Deployment = live.(*appsv1.Deployment)
			}
			continue
		}
		applied, err := r.apply(ctx, obj)
		if err != nil {
			obs.ApplyError = err
			r.Recorder.Eventf(ksub, nil, corev1.EventTypeWarning, EventApplyFailed, "Apply", "%s", err.Error())
			return reconcile.Result{}, err
		}
		if !isDeployment {
			continue
		}
		dep = &appsv1.Deployment{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(applied.Object, dep); err != nil {
			return reconcile.Result{}, fmt.Errorf("read applied Deployment: %w", err)
		}
		obs.Deployment = dep
		switch existing, _ := live.(*appsv1.Deployment); {
		case existing == nil:
			r.Recorder.Eventf(ksub, dep, corev1.EventTypeNormal, EventCreated, "Apply", msgCreatedDeployment, dep.Name, *dep.Spec.Replicas)
		case existing.Generation != dep.Generation:
			r.Recorder.Eventf(ksub, dep, corev1.EventTypeNormal, EventUpdated, "Apply", msgUpdatedDeployment, dep.Name, shortHash(desired.ConfigHash), *dep.Spec.Replicas)
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

// live returns the cached object of obj's kind and key, nil when there is none.
func (r *KafkaSubscriptionReconciler) live(ctx context.Context, obj client.Object) (client.Object, error) {
	live := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	err := r.Get(ctx, client.ObjectKeyFromObject(obj), live)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get %T %s: %w", obj, obj.GetName(), err)
	}
	return live, nil
}

// isUpToDate reports whether the live object needs no apply: it carries the desired
// AnnotationAppliedHash (the desired state did not change since it was last applied) and
// every field the operator sets still has the desired value (nobody edited one by hand;
// fields others added and defaults the API server filled in do not matter, as server-side
// apply would leave them too).
func isUpToDate(desired, live client.Object) (bool, error) {
	if live == nil || reflect.ValueOf(live).IsNil() {
		return false, nil
	}
	if live.GetAnnotations()[AnnotationAppliedHash] != desired.GetAnnotations()[AnnotationAppliedHash] {
		return false, nil
	}
	want, err := toApplyObject(desired)
	if err != nil {
		return false, err
	}
	have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
	if err != nil {
		return false, fmt.Errorf("convert live %s: %w", live.GetName(), err)
	}
	delete(want.Object, "apiVersion")
	delete(want.Object, "kind")
	return isSubset(want.Object, have), nil
}

// isSubset reports whether every field of want is in have with the same value; lists must
// have the same length, element by element.
func isSubset(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok {
				if isEmpty(wv) {
					continue
				}
				return false
			}
			if !isSubset(wv, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return isEmpty(w) && have == nil
		}
		for i := range w {
			if !isSubset(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, have)
	}
}

// isEmpty is an empty map or list, which the API server may drop.
func isEmpty(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
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

// replaceService deletes the subscription's metrics Service that still has a cluster IP
// (made before the Service was headless): a cluster IP cannot be removed in place. The
// apply that follows creates it again, headless.
func (r *KafkaSubscriptionReconciler) replaceService(ctx context.Context, ksub *kafkasubv1alpha1.KafkaSubscription, svc *corev1.Service) error {
	if !metav1.IsControlledBy(svc, ksub) {
		return nil // the apply reports the conflict
	}
	if err := r.Delete(ctx, svc, client.Preconditions{UID: &svc.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete Service %s to recreate it headless: %w", svc.Name, err)
	}
	log.FromContext(ctx).Info(logReplacedService, "name", svc.Name, "clusterIP", svc.Spec.ClusterIP)
	return nil
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
	r.Recorder.Eventf(ksub, pdb, corev1.EventTypeNormal, EventDeleted, "Delete", msgDeletedPDB, pdb.Name)
	return nil
}

// observePods returns the subscription's consumer pods and records what the subscription's consumer pods report: a Secret or key their
// kubelet could not find, from the container statuses (CreateContainerConfigError) and the
// FailedMount events of pods that have not started; and a consumer container that cannot
// run, from its termination state.
func (r *KafkaSubscriptionReconciler) observePods(ctx context.Context, ksub *kafkasubv1alpha1.KafkaSubscription, obs *Observation) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ksub.Namespace), client.MatchingLabels{LabelSubscription: ksub.Name}); err != nil {
		return nil, fmt.Errorf("list consumer pods: %w", err)
	}
	if len(pods.Items) == 0 {
		return nil, nil
	}
	obs.ConsumerFailure = ConsumerFailureOf(pods.Items)
	events := &corev1.EventList{}
	if err := r.List(ctx, events, client.InNamespace(ksub.Namespace)); err != nil {
		return nil, fmt.Errorf("list FailedMount events: %w", err)
	}
	obs.MissingSecrets = SecretProblems(ksub, pods.Items, events.Items)
	return pods.Items, nil
}

// writeStatus computes the status and writes it only when it changed, with an event when
// a Secret goes missing or comes back.
func (r *KafkaSubscriptionReconciler) writeStatus(ctx context.Context, ksub *kafkasubv1alpha1.KafkaSubscription, obs Observation) error {
	status := ComputeStatus(ksub, obs)
	if !StatusWriteDue(ksub.Status, status) {
		return nil
	}
	key := client.ObjectKeyFromObject(ksub)
	if v, ok := r.statusWrites.Load(key); ok {
		last := v.(statusWrite)
		if last.overResourceVersion == ksub.ResourceVersion {
			// The cache has not seen the last write yet: what was computed here is computed
			// over the status before it (a condition set again gets a new transition time,
			// so it would differ from what was written only in that), and the write's own
			// event brings a reconcile that sees it.
			return nil
		}
		if r.Consumers != nil && LagChangeOnly(ksub.Status, status) && time.Since(last.at) < lagWritePolls*r.Consumers.Interval {
			return nil // a later poll writes it
		}
	}

	wasMissing := meta.IsStatusConditionPresentAndEqual(ksub.Status.Conditions, kafkasubv1alpha1.ConditionDegraded, metav1.ConditionTrue) &&
		meta.FindStatusCondition(ksub.Status.Conditions, kafkasubv1alpha1.ConditionDegraded).Reason == kafkasubv1alpha1.ReasonSecretNotFound
	isMissing := len(obs.MissingSecrets) > 0
	if isMissing && !wasMissing {
		log.FromContext(ctx).Info(logSecretsNotFound, "message", MissingSecretsMessage(obs.MissingSecrets))
		r.Recorder.Eventf(ksub, nil, corev1.EventTypeWarning, EventSecretNotFound, "CheckSecrets", "%s", MissingSecretsMessage(obs.MissingSecrets))
	}
	if wasMissing && !isMissing && obs.InvalidSpec == nil {
		r.Recorder.Eventf(ksub, nil, corev1.EventTypeNormal, EventSecretsFound, "CheckSecrets", msgSecretsFound)
	}

	if f := obs.ConsumerFailure; f != nil && degradedBy(status, f.Reason) && !degradedBy(ksub.Status, f.Reason) {
		log.FromContext(ctx).Info(logConsumerFailed, "reason", f.Reason, "pod", f.Pod, "message", f.Message)
		r.Recorder.Eventf(ksub, nil, corev1.EventTypeWarning, f.Reason, "CheckConsumers", msgConsumerFailed, f.Pod, f.Message)
	}

	base := ksub.DeepCopy()
	ksub.Status = status
	if err := r.Status().Patch(ctx, ksub, client.MergeFrom(base)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update status: %w", err)
	}
	if ksub.ResourceVersion != base.ResourceVersion {
		r.statusWrites.Store(key, statusWrite{overResourceVersion: base.ResourceVersion, at: time.Now()})
	} else {
		// The patch changed nothing (the server had this status already): no event comes
		// for it, and the cache's resourceVersion is current.
		r.statusWrites.Delete(key)
	}
	log.FromContext(ctx).V(1).Info(logStatusUpdated)
	return nil
}

// degradedBy reports whether st shows Degraded True with reason.
func degradedBy(st kafkasubv1alpha1.KafkaSubscriptionStatus, reason string) bool {
	c := meta.FindStatusCondition(st.Conditions, kafkasubv1alpha1.ConditionDegraded)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// SetupWithManager registers the controller: it watches KafkaSubscriptions, the children
// they own, their consumer pods (only a change of what the pods report about Secrets and
// failed containers matters) and the FailedMount events of those pods.
func (r *KafkaSubscriptionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	subscriptionOf := func(obj client.Object) []reconcile.Request {
		name := obj.GetLabels()[LabelSubscription]
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
	}
	podToSubscription := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return subscriptionOf(obj)
	})
	eventToSubscription := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		ev, ok := obj.(*corev1.Event)
		if !ok || ev.InvolvedObject.Kind != "Pod" {
			return nil
		}
		pod := &corev1.Pod{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: ev.InvolvedObject.Namespace, Name: ev.InvolvedObject.Name}, pod); err != nil {
			if !apierrors.IsNotFound(err) {
				log.FromContext(ctx).Error(err, logListPodsForRequest, "pod", ev.InvolvedObject.Name)
			}
			return nil
		}
		return subscriptionOf(pod)
	})
	podChanged := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		oldPod, ok1 := e.ObjectOld.(*corev1.Pod)
		newPod, ok2 := e.ObjectNew.(*corev1.Pod)
		return !ok1 || !ok2 || podReportedState(oldPod) != podReportedState(newPod)
	}}

	b := ctrl.NewControllerManagedBy(mgr).
		For(&kafkasubv1alpha1.KafkaSubscription{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Pod{}, podToSubscription, builder.WithPredicates(podChanged)).
		Watches(&corev1.Event{}, eventToSubscription).
		Named(ControllerName)
	if r.Consumers != nil {
		// A finished poll of the consumer pods' status.
		b = b.WatchesRawSource(source.Channel(r.Consumers.Done, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}
