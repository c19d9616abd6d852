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
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// Observation is what one reconcile saw and did; ComputeStatus turns it into a status.
type Observation struct {
	// Deployment is the consumer Deployment as the API server returned it; nil when it
	// does not exist (yet).
	Deployment *appsv1.Deployment
	// MissingSecrets are the Secrets and keys the consumer pods' kubelet could not find.
	MissingSecrets []SecretProblem
	// ConsumerFailure is why a consumer container cannot run, from its pod's status; nil
	// when none failed.
	ConsumerFailure *ConsumerFailure
	// InvalidSpec is the error that kept the spec from being rendered.
	InvalidSpec error
	// ApplyError is the error of applying a child object.
	ApplyError error
	// Complete is true when every child was applied: the status then describes the
	// subscription's current generation.
	Complete bool
	// Consumers is what the consumer pods reported at their status endpoints; nil when no
	// poll has finished yet, which leaves the consumer fields of the status as they are.
	Consumers *ConsumersSummary
}

// ComputeStatus returns the subscription's new status from its current status and what a
// reconcile observed. It is a pure function: lastTransitionTime is kept for every
// condition whose status did not change.
func ComputeStatus(ksub *kafkasubv1alpha1.KafkaSubscription, obs Observation) kafkasubv1alpha1.KafkaSubscriptionStatus {
	st := *ksub.Status.DeepCopy()
	gen := ksub.Generation
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen,
		})
	}

	st.DeploymentName = ChildName(ksub.Name)
	st.ConsumerGroup = ksub.ConsumerGroup()
	if obs.Complete {
		st.ObservedGeneration = gen
	}
	if d := obs.Deployment; d != nil {
		st.Replicas = d.Status.Replicas
		st.ReadyReplicas = d.Status.ReadyReplicas
	}

	setConsumerStatus(&st, obs.Consumers, set)

	// Degraded: the first of what needs a person, in order of how much it blocks.
	switch {
	case obs.InvalidSpec != nil:
		set(kafkasubv1alpha1.ConditionDegraded, metav1.ConditionTrue, kafkasubv1alpha1.ReasonInvalidSpec, obs.InvalidSpec.Error())
	case obs.ApplyError != nil:
		set(kafkasubv1alpha1.ConditionDegraded, metav1.ConditionTrue, kafkasubv1alpha1.ReasonApplyFailed, obs.ApplyError.Error())
	case len(obs.MissingSecrets) > 0:
		set(kafkasubv1alpha1.ConditionDegraded, metav1.ConditionTrue, kafkasubv1alpha1.ReasonSecretNotFound, MissingSecretsMessage(obs.MissingSecrets))
	case reportsConsumerFailure(st.Conditions, obs.ConsumerFailure, consumersAvailable(obs.Deployment)):
		set(kafkasubv1alpha1.ConditionDegraded, metav1.ConditionTrue, obs.ConsumerFailure.Reason, obs.ConsumerFailure.Message)
	case rolloutFailed(obs.Deployment) != "":
		set(kafkasubv1alpha1.ConditionDegraded, metav1.ConditionTrue, kafkasubv1alpha1.ReasonRolloutFailed, rolloutFailed(obs.Deployment))
	default:
		set(kafkasubv1alpha1.ConditionDegraded, metav1.ConditionFalse, kafkasubv1alpha1.ReasonAsExpected, "Nothing needs attention")
	}

	if obs.InvalidSpec != nil {
		msg := "The spec cannot be rendered into a consumer configuration; nothing was applied"
		set(kafkasubv1alpha1.ConditionReady, metav1.ConditionFalse, kafkasubv1alpha1.ReasonInvalidSpec, msg)
		set(kafkasubv1alpha1.ConditionProgressing, metav1.ConditionFalse, kafkasubv1alpha1.ReasonInvalidSpec, msg)
		return st
	}

	d := obs.Deployment
	name := ChildName(ksub.Name)
	if ksub.Spec.Suspend {
		msg := fmt.Sprintf("spec.suspend is true: the Deployment %s is scaled to zero", name)
		if d != nil && d.Status.Replicas > 0 {
			msg = fmt.Sprintf("spec.suspend is true: the Deployment %s is stopping %d pods", name, d.Status.Replicas)
		}
		set(kafkasubv1alpha1.ConditionReady, metav1.ConditionFalse, kafkasubv1alpha1.ReasonSuspended, msg)
		set(kafkasubv1alpha1.ConditionProgressing, metav1.ConditionFalse, kafkasubv1alpha1.ReasonSuspended, msg)
		return st
	}
	if d == nil {
		msg := fmt.Sprintf("The Deployment %s is being created", name)
		set(kafkasubv1alpha1.ConditionReady, metav1.ConditionFalse, kafkasubv1alpha1.ReasonRolloutInProgress, msg)
		set(kafkasubv1alpha1.ConditionProgressing, metav1.ConditionTrue, kafkasubv1alpha1.ReasonRolloutInProgress, msg)
		return st
	}

	want, rolling, available := rolloutState(d)
	s := d.Status
	switch {
	case rolling:
		msg := fmt.Sprintf("The Deployment %s rolls out: %d of %d pods updated, %d available", name, s.UpdatedReplicas, want, s.AvailableReplicas)
		set(kafkasubv1alpha1.ConditionReady, metav1.ConditionFalse, kafkasubv1alpha1.ReasonRolloutInProgress, msg)
		set(kafkasubv1alpha1.ConditionProgressing, metav1.ConditionTrue, kafkasubv1alpha1.ReasonRolloutInProgress, msg)
	case !available:
		msg := fmt.Sprintf("%d of %d consumer pods of the Deployment %s are available", s.AvailableReplicas, want, name)
		set(kafkasubv1alpha1.ConditionReady, metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable, msg)
		set(kafkasubv1alpha1.ConditionProgressing, metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable, msg)
	default:
		msg := fmt.Sprintf("%d of %d consumer pods of the Deployment %s are available", s.AvailableReplicas, want, name)
		set(kafkasubv1alpha1.ConditionReady, metav1.ConditionTrue, kafkasubv1alpha1.ReasonDeploymentAvailable, msg)
		set(kafkasubv1alpha1.ConditionProgressing, metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentAvailable, msg)
	}
	return st
}

// Most pods a consumer condition's message names.
const maxPodsNamed = 5

// setConsumerStatus sets lag, dead letters, the last error and the conditions DatabaseReady
// and ConsumersJoined from what the consumer pods reported. With no answer the numbers stay
// as last reported; the last error and the time of the last dead letter stay until a newer
// one, as a replaced pod forgets them.
func setConsumerStatus(st *kafkasubv1alpha1.KafkaSubscriptionStatus, c *ConsumersSummary, set func(t string, s metav1.ConditionStatus, reason, msg string)) {
	if c == nil {
		return
	}
	switch {
	case c.Running == 0:
		// Only a consumer can tell the lag (the operator holds no Kafka credentials): with
		// none running it is unknown, not the last value reported.
		st.Lag = nil
		set(kafkasubv1alpha1.ConditionConsumersJoined, metav1.ConditionFalse, kafkasubv1alpha1.ReasonNoConsumers, "No consumer pod runs")
		set(kafkasubv1alpha1.ConditionDatabaseReady, metav1.ConditionUnknown, kafkasubv1alpha1.ReasonNoConsumers, "No consumer pod runs")
		return
	case c.Answered == 0:
		msg := fmt.Sprintf("None of the %d running consumer pods answered at %s", c.Running, consumer.StatusPath)
		set(kafkasubv1alpha1.ConditionConsumersJoined, metav1.ConditionUnknown, kafkasubv1alpha1.ReasonStatusUnreachable, msg)
		set(kafkasubv1alpha1.ConditionDatabaseReady, metav1.ConditionUnknown, kafkasubv1alpha1.ReasonStatusUnreachable, msg)
		return
	}
	st.Lag = c.Lag
	dl := c.DeadLetters.DeepCopy()
	if old := st.DeadLetters; old != nil && old.LastTime != nil && (dl.LastTime == nil || old.LastTime.After(dl.LastTime.Time)) {
		dl.LastTime = old.LastTime.DeepCopy()
	}
	st.DeadLetters = dl
	if e := c.LastError; e != nil && (st.LastError == nil || e.Time.After(st.LastError.Time.Time)) {
		st.LastError = e.DeepCopy()
	}

	if len(c.DatabaseDown) > 0 {
		set(kafkasubv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, kafkasubv1alpha1.ReasonDatabaseUnreachable,
			fmt.Sprintf("The database did not answer the last ping of consumer pods %s", namePods(c.DatabaseDown)))
	} else {
		set(kafkasubv1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, kafkasubv1alpha1.ReasonDatabaseAnswers,
			"The database answers every consumer pod that reported")
	}
	if len(c.NotJoined) > 0 {
		set(kafkasubv1alpha1.ConditionConsumersJoined, metav1.ConditionFalse, kafkasubv1alpha1.ReasonNotJoined,
			fmt.Sprintf("Consumer pods %s are not members of the group's current session", namePods(c.NotJoined)))
	} else {
		set(kafkasubv1alpha1.ConditionConsumersJoined, metav1.ConditionTrue, kafkasubv1alpha1.ReasonJoined,
			"Every consumer pod that reported is a member of the consumer group")
	}
}

// namePods lists up to maxPodsNamed pods and how many more there are.
func namePods(pods []string) string {
	if len(pods) <= maxPodsNamed {
		return strings.Join(pods, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(pods[:maxPodsNamed], ", "), len(pods)-maxPodsNamed)
}

// StatusWriteDue reports whether status next differs from status current in anything
// that a write should carry. Lags are rounded before they reach the status (RoundLag), so
// an idle subscription's status does not change from poll to poll.
func StatusWriteDue(current, next kafkasubv1alpha1.KafkaSubscriptionStatus) bool {
	return !equality.Semantic.DeepEqual(current, next)
}

// LagChangeOnly reports whether next differs from current in the lag's numbers alone (a lag
// there before and after, everything else equal). Such a write can wait: a subscription
// that keeps up has a lag that moves between polls by less than RoundLag rounds away only
// while it is 100 or more.
func LagChangeOnly(current, next kafkasubv1alpha1.KafkaSubscriptionStatus) bool {
	if current.Lag == nil || next.Lag == nil {
		return false
	}
	next.Lag = current.Lag
	return equality.Semantic.DeepEqual(current, next)
}

// reportsConsumerFailure reports whether Degraded shows f: always when its container is
// terminated or waits to be restarted; when it runs again after the failure only while
// Degraded already shows a consumer failure and not every consumer is available. So a
// crash loop does not clear Degraded on every restart, and an old crash does not come back
// when a consumer that has been ready turns unready (as it does while its database is
// down). The pod cache keeps no readiness, so the Deployment's availability stands for it.
func reportsConsumerFailure(conditions []metav1.Condition, f *ConsumerFailure, available bool) bool {
	if f == nil {
		return false
	}
	if !f.Recovering {
		return true
	}
	c := meta.FindStatusCondition(conditions, kafkasubv1alpha1.ConditionDegraded)
	return !available && c != nil && c.Status == metav1.ConditionTrue &&
		(c.Reason == kafkasubv1alpha1.ReasonHandlerNotRegistered || c.Reason == kafkasubv1alpha1.ReasonConsumerCrashing)
}

// consumersAvailable reports whether every desired consumer pod of d is updated, ready and
// available.
func consumersAvailable(d *appsv1.Deployment) bool {
	if d == nil {
		return false
	}
	_, rolling, available := rolloutState(d)
	return !rolling && available
}

// rolloutState returns the desired replicas of d, whether it rolls out (its controller has
// not seen the current generation, or pods are not updated yet) and whether the desired
// number of pods is ready and available.
func rolloutState(d *appsv1.Deployment) (want int32, rolling, available bool) {
	want = 1
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	rolling = s.ObservedGeneration < d.Generation || s.UpdatedReplicas < want || s.Replicas > s.UpdatedReplicas
	available = s.AvailableReplicas >= want && s.ReadyReplicas >= want
	return want, rolling, available
}

// MaxConditionMessage is the most of a termination message a condition repeats, in bytes:
// the consumer's own messages fit, a log tail the kubelet took instead is cut.
const MaxConditionMessage = 1024

// ConsumerFailure is why a consumer container cannot run, as its kubelet reports it.
type ConsumerFailure struct {
	// Pod is the name of the pod.
	Pod string
	// Reason is ReasonHandlerNotRegistered or ReasonConsumerCrashing.
	Reason string
	// Message is the container's termination message, cut to MaxConditionMessage; its
	// exit code and the kubelet's reason when it is empty.
	Message string
	// Recovering is true when the container runs again after the failure (ready or not:
	// the Deployment's availability tells).
	Recovering bool
}

// msgExitedWithoutMessage describes a termination without a message: the pod, the exit
// code and the kubelet's reason (Error, OOMKilled, ...).
const msgExitedWithoutMessage = "The consumer container of pod %s exited with code %d (%s) without a termination message"

// ConsumerFailureOf returns the consumer failure the pods report, nil when none does: a
// container terminated with an error, or waiting to be restarted (CrashLoopBackOff) or
// running again after one (Recovering). An error is a non-zero exit code or a termination
// message the consumer wrote. HandlerNotRegistered comes first, then a failure over a
// recovery, then the pod name; pods being deleted are left out.
func ConsumerFailureOf(pods []corev1.Pod) *ConsumerFailure {
	var best *ConsumerFailure
	rank := func(f *ConsumerFailure) int {
		r := 0
		if f.Reason != kafkasubv1alpha1.ReasonHandlerNotRegistered {
			r += 2
		}
		if f.Recovering {
			r++
		}
		return r
	}
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			f := containerFailure(p.Name, cs)
			if f == nil {
				continue
			}
			if best == nil || rank(f) < rank(best) || (rank(f) == rank(best) && f.Pod < best.Pod) {
				best = f
			}
		}
	}
	return best
}

// containerFailure is the failure one container status shows, nil when it shows none.
func containerFailure(pod string, cs corev1.ContainerStatus) *ConsumerFailure {
	t, recovering := cs.State.Terminated, false
	switch {
	case t != nil:
	case cs.State.Waiting != nil:
		t = cs.LastTerminationState.Terminated
	case cs.State.Running != nil:
		t, recovering = cs.LastTerminationState.Terminated, true
	}
	if t == nil {
		return nil
	}
	msg := strings.TrimSpace(t.Message)
	reason, _ := consumer.ParseTerminationMessage(msg)
	if t.ExitCode == 0 && reason == "" {
		return nil // a clean stop, e.g. to pick up a rotated Secret
	}
	f := &ConsumerFailure{Pod: pod, Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: cutMessage(msg), Recovering: recovering}
	if reason == consumer.TerminationHandlerNotRegistered {
		f.Reason = kafkasubv1alpha1.ReasonHandlerNotRegistered
	}
	if f.Message == "" {
		f.Message = fmt.Sprintf(msgExitedWithoutMessage, pod, t.ExitCode, t.Reason)
	}
	return f
}

// cutMessage cuts msg to MaxConditionMessage bytes on a UTF-8 boundary, marking the cut.
func cutMessage(msg string) string {
	const mark = " [...]"
	if len(msg) <= MaxConditionMessage {
		return msg
	}
	cut := MaxConditionMessage - len(mark)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + mark
}

// rolloutFailed returns the Deployment's message when it exceeded its progress deadline.
func rolloutFailed(d *appsv1.Deployment) string {
	if d == nil {
		return ""
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return fmt.Sprintf("The Deployment %s exceeded its progress deadline: %s", d.Name, c.Message)
		}
	}
	return ""
}

// SecretProblem is a Secret, or one key of it, that a consumer pod's kubelet could not find.
type SecretProblem struct {
	SecretUse
	// MissingKey is the key the Secret lacks; empty when the Secret itself is missing.
	MissingKey string
}

// What the kubelet says when it cannot find a Secret or key: in a container's waiting
// message (CreateContainerConfigError, for env) or a FailedMount event (for volumes).
var (
	reSecretNotFound   = regexp.MustCompile(`secrets? "([^"]+)" not found`)
	reEnvKeyNotFound   = regexp.MustCompile(`couldn't find key (\S+) in Secret [^/\s]+/([^\s,\]]+)`)
	reMountKeyNotFound = regexp.MustCompile(`references non-existent secret key: ([^\s,\]]+)`)
)

// Kubelet reasons SecretProblems reads.
const (
	reasonCreateContainerConfigError = "CreateContainerConfigError"
	reasonFailedMount                = "FailedMount"
)

// SecretProblems returns the Secrets and keys the kubelet reports missing for the
// subscription's consumer pods: from containers waiting with CreateContainerConfigError,
// and from FailedMount events of pods whose containers never started (an event outlives
// its cause by up to an hour; a started pod has mounted its volumes).
func SecretProblems(ksub *kafkasubv1alpha1.KafkaSubscription, pods []corev1.Pod, events []corev1.Event) []SecretProblem {
	uses := ReferencedSecrets(ksub)
	found := map[[2]string]SecretProblem{}
	secretMissing := func(name string) {
		p := SecretProblem{SecretUse: SecretUse{Name: name, Fields: []string{"spec.template"}}}
		for _, u := range uses {
			if u.Name == name {
				p.SecretUse = u
			}
		}
		found[[2]string{name, ""}] = p
	}
	keyMissing := func(name, key string) {
		for _, u := range uses {
			if (name == "" || u.Name == name) && containsString(u.Keys, key) {
				found[[2]string{u.Name, key}] = SecretProblem{SecretUse: SecretUse{Name: u.Name, Keys: []string{key}, Fields: u.Fields}, MissingKey: key}
			}
		}
	}
	read := func(msg string) {
		for _, m := range reSecretNotFound.FindAllStringSubmatch(msg, -1) {
			secretMissing(m[1])
		}
		for _, m := range reEnvKeyNotFound.FindAllStringSubmatch(msg, -1) {
			keyMissing(m[2], m[1])
		}
		for _, m := range reMountKeyNotFound.FindAllStringSubmatch(msg, -1) {
			keyMissing("", m[1]) // the kubelet does not name the Secret
		}
	}

	waiting := map[types.UID]bool{}
	for i := range pods {
		p := &pods[i]
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason == reasonCreateContainerConfigError {
				read(w.Message)
			}
		}
		if !podStarted(p) {
			waiting[p.UID] = true
		}
	}
	for i := range events {
		e := &events[i]
		if e.Reason == reasonFailedMount && e.InvolvedObject.Kind == "Pod" && waiting[e.InvolvedObject.UID] {
			read(e.Message)
		}
	}

	out := make([]SecretProblem, 0, len(found))
	for _, p := range found {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].MissingKey < out[j].MissingKey
	})
	return out
}

// podStarted reports whether any container of the pod has run, so its volumes were mounted.
func podStarted(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil || cs.RestartCount > 0 {
			return true
		}
	}
	return false
}

// podReportedState is the part of a pod's status the status computation reads (what
// SecretProblems and ConsumerFailureOf see, and the phase and IP the poller asks at): a
// pod update that does not change it needs no reconcile, so a restart that only counts up
// is not one.
func podReportedState(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%t|%t|%s|%s", podStarted(p), p.DeletionTimestamp != nil, p.Status.Phase, p.Status.PodIP)
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason == reasonCreateContainerConfigError {
			fmt.Fprintf(&b, "|%s|%s", cs.Name, w.Message)
		}
		if f := containerFailure(p.Name, cs); f != nil {
			fmt.Fprintf(&b, "|%s|%t|%s|%s", cs.Name, f.Recovering, f.Reason, f.Message)
		}
	}
	return b.String()
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// MissingSecretsMessage names every missing Secret with the keys and spec fields that use
// it, and every missing key with its Secret.
func MissingSecretsMessage(missing []SecretProblem) string {
	parts := make([]string, 0, len(missing))
	for _, m := range missing {
		if m.MissingKey != "" {
			parts = append(parts, fmt.Sprintf("Secret %q has no key %q (for %s)", m.Name, m.MissingKey, strings.Join(m.Fields, ", ")))
			continue
		}
		keys := make([]string, len(m.Keys))
		for i, k := range m.Keys {
			keys[i] = fmt.Sprintf("%q", k)
		}
		var what string
		switch len(keys) {
		case 0:
		case 1:
			what = "key " + keys[0] + ", "
		default:
			what = "keys " + strings.Join(keys, ", ") + ", "
		}
		parts = append(parts, fmt.Sprintf("Secret %q (%sfor %s) not found", m.Name, what, strings.Join(m.Fields, ", ")))
	}
	return strings.Join(parts, "; ")
}
