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
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

func deployment(want, updated, ready, available, total int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "inventory-consumer", Generation: 3},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(want)},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 3, Replicas: total, UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: available,
		},
	}
}

type wantCondition struct {
	status metav1.ConditionStatus
	reason string
}

func TestComputeStatus(t *testing.T) {
	missing := []SecretProblem{{SecretUse: SecretUse{Name: "shop-db", Keys: []string{"dsn"}, Fields: []string{"spec.database.dsnSecretRef"}}}}
	stuck := deployment(2, 2, 0, 0, 2)
	stuck.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
		Message: `ReplicaSet "inventory-consumer-abc" has timed out progressing.`,
	}}
	oldGeneration := deployment(2, 2, 2, 2, 2)
	oldGeneration.Status.ObservedGeneration = 2
	const notRegistered = `HandlerNotRegistered: handler "orders.status" is not registered in this consumer image (registered handlers: inventory.product-updates)`

	cases := []struct {
		name        string
		suspend     bool
		obs         Observation
		ready       wantCondition
		progressing wantCondition
		degraded    wantCondition
		msgContains string
	}{
		{
			name:        "An available Deployment makes the subscription Ready",
			obs:         Observation{Deployment: deployment(2, 2, 2, 2, 2), Complete: true},
			ready:       wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonDeploymentAvailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentAvailable},
			degraded:    wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonAsExpected},
		},
		{
			name:        "A Deployment that does not exist yet is progressing",
			obs:         Observation{Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonRolloutInProgress},
			progressing: wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonRolloutInProgress},
			degraded:    wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonAsExpected},
		},
		{
			name:        "A Deployment with old pods is rolling out",
			obs:         Observation{Deployment: deployment(2, 1, 2, 2, 3), Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonRolloutInProgress},
			progressing: wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonRolloutInProgress},
			degraded:    wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonAsExpected},
		},
		{
			name:        "A Deployment whose controller has not seen the new generation is rolling out",
			obs:         Observation{Deployment: oldGeneration, Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonRolloutInProgress},
			progressing: wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonRolloutInProgress},
			degraded:    wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonAsExpected},
		},
		{
			name:        "A rolled-out Deployment with a crashed pod is unavailable",
			obs:         Observation{Deployment: deployment(2, 2, 1, 1, 2), Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			degraded:    wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonAsExpected},
			msgContains: "1 of 2 consumer pods",
		},
		{
			name:        "A missing Secret degrades the subscription and names the Secret and key",
			obs:         Observation{Deployment: deployment(2, 2, 0, 0, 2), MissingSecrets: missing, Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			degraded:    wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonSecretNotFound},
			msgContains: `Secret "shop-db" (key "dsn", for spec.database.dsnSecretRef) not found`,
		},
		{
			name:        "A stuck rollout degrades the subscription",
			obs:         Observation{Deployment: stuck, Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			degraded:    wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonRolloutFailed},
			msgContains: "exceeded its progress deadline",
		},
		{
			name:        "An apply error degrades the subscription",
			obs:         Observation{Deployment: deployment(2, 2, 2, 2, 2), ApplyError: errors.New("apply Service inventory-consumer: forbidden")},
			ready:       wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonDeploymentAvailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentAvailable},
			degraded:    wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonApplyFailed},
			msgContains: "forbidden",
		},
		{
			name:        "An invalid spec is reported on every condition",
			obs:         Observation{InvalidSpec: errors.New("the consumer configuration is invalid: deadLetter.topic: must differ")},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonInvalidSpec},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonInvalidSpec},
			degraded:    wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonInvalidSpec},
			msgContains: "deadLetter.topic",
		},
		{
			name:        "A consumer whose image lacks its handler degrades the subscription with its termination message",
			obs:         Observation{Deployment: deployment(1, 1, 0, 0, 1), ConsumerFailure: &ConsumerFailure{Pod: "p", Reason: kafkasubv1alpha1.ReasonHandlerNotRegistered, Message: notRegistered}, Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			degraded:    wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonHandlerNotRegistered},
			msgContains: notRegistered,
		},
		{
			name:        "A crashing consumer degrades the subscription with its last termination message",
			obs:         Observation{Deployment: deployment(1, 1, 0, 0, 1), ConsumerFailure: &ConsumerFailure{Pod: "p", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "ConsumerFailed: join group: EOF"}, Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			degraded:    wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonConsumerCrashing},
			msgContains: "ConsumerFailed: join group: EOF",
		},
		{
			name:        "A missing Secret is reported before a crashing consumer",
			obs:         Observation{Deployment: deployment(1, 1, 0, 0, 1), MissingSecrets: missing, ConsumerFailure: &ConsumerFailure{Pod: "p", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "ConsumerFailed: x"}, Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			degraded:    wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonSecretNotFound},
		},
		{
			name:        "A consumer that runs again after a crash is not reported anew",
			obs:         Observation{Deployment: deployment(1, 1, 0, 0, 1), ConsumerFailure: &ConsumerFailure{Pod: "p", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "ConsumerFailed: x", Recovering: true}, Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDeploymentUnavailable},
			degraded:    wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonAsExpected},
		},
		{
			name:        "A suspended subscription is not ready, with reason Suspended",
			suspend:     true,
			obs:         Observation{Deployment: deployment(0, 0, 0, 0, 0), Complete: true},
			ready:       wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonSuspended},
			progressing: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonSuspended},
			degraded:    wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonAsExpected},
			msgContains: "scaled to zero",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := testSubscription()
			k.Generation = 4
			k.Spec.Suspend = tc.suspend
			st := ComputeStatus(k, tc.obs)
			check := func(typ string, want wantCondition) {
				c := meta.FindStatusCondition(st.Conditions, typ)
				if c == nil {
					t.Fatalf("no %s condition", typ)
				}
				if c.Status != want.status || c.Reason != want.reason {
					t.Errorf("%s = %s/%s (%s), want %s/%s", typ, c.Status, c.Reason, c.Message, want.status, want.reason)
				}
				if c.ObservedGeneration != 4 {
					t.Errorf("%s observedGeneration = %d, want 4", typ, c.ObservedGeneration)
				}
				if c.Message == "" {
					t.Errorf("%s has no message", typ)
				}
			}
			check(kafkasubv1alpha1.ConditionReady, tc.ready)
			check(kafkasubv1alpha1.ConditionProgressing, tc.progressing)
			check(kafkasubv1alpha1.ConditionDegraded, tc.degraded)
			if tc.msgContains != "" {
				var all []string
				for _, c := range st.Conditions {
					all = append(all, c.Message)
				}
				if !strings.Contains(strings.Join(all, "\n"), tc.msgContains) {
					t.Errorf("no condition message contains %q: %v", tc.msgContains, all)
				}
			}
			wantGen := int64(0)
			if tc.obs.Complete {
				wantGen = 4
			}
			if st.ObservedGeneration != wantGen {
				t.Errorf("observedGeneration = %d, want %d", st.ObservedGeneration, wantGen)
			}
			if st.DeploymentName != "inventory-consumer" || st.ConsumerGroup != "shop.inventory" {
				t.Errorf("deploymentName %q, consumerGroup %q", st.DeploymentName, st.ConsumerGroup)
			}
			if d := tc.obs.Deployment; d != nil && (st.Replicas != d.Status.Replicas || st.ReadyReplicas != d.Status.ReadyReplicas) {
				t.Errorf("replicas %d/%d, want %d/%d", st.ReadyReplicas, st.Replicas, d.Status.ReadyReplicas, d.Status.Replicas)
			}
		})
	}
}

func TestComputeStatusIsStable(t *testing.T) {
	// Computing the status again from the same observation must give an identical status,
	// transition times included, or the controller would write the status on every pass.
	k := testSubscription()
	obs := Observation{Deployment: deployment(2, 2, 2, 2, 2), Complete: true}
	first := ComputeStatus(k, obs)
	for i := range first.Conditions {
		first.Conditions[i].LastTransitionTime = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	k.Status = first
	second := ComputeStatus(k, obs)
	if !equalStatus(first, second) {
		t.Errorf("status changed without a change in what was observed:\n%+v\n%+v", first, second)
	}

	// A change of Ready moves its transition time and nothing else's.
	third := ComputeStatus(k, Observation{Deployment: deployment(2, 2, 1, 1, 2), Complete: true})
	ready := meta.FindStatusCondition(third.Conditions, kafkasubv1alpha1.ConditionReady)
	degraded := meta.FindStatusCondition(third.Conditions, kafkasubv1alpha1.ConditionDegraded)
	if ready.LastTransitionTime.Year() == 2026 && ready.LastTransitionTime.Month() == 1 && ready.LastTransitionTime.Day() == 1 {
		t.Error("Ready changed status but kept its transition time")
	}
	if !degraded.LastTransitionTime.Equal(&first.Conditions[0].LastTransitionTime) {
		t.Error("Degraded did not change but its transition time moved")
	}
}

func equalStatus(a, b kafkasubv1alpha1.KafkaSubscriptionStatus) bool {
	return a.ObservedGeneration == b.ObservedGeneration && a.Replicas == b.Replicas && a.ReadyReplicas == b.ReadyReplicas &&
		a.DeploymentName == b.DeploymentName && a.ConsumerGroup == b.ConsumerGroup && conditionsEqual(a.Conditions, b.Conditions)
}

func conditionsEqual(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Status != b[i].Status || a[i].Reason != b[i].Reason || a[i].Message != b[i].Message ||
			a[i].ObservedGeneration != b[i].ObservedGeneration || !a[i].LastTransitionTime.Equal(&b[i].LastTransitionTime) {
			return false
		}
	}
	return true
}

func TestMissingSecretsMessage(t *testing.T) {
	cases := []struct {
		name    string
		missing []SecretProblem
		want    string
	}{
		{"One Secret with one key", []SecretProblem{{SecretUse: SecretUse{Name: "shop-db", Keys: []string{"dsn"}, Fields: []string{"spec.database.dsnSecretRef"}}}},
			`Secret "shop-db" (key "dsn", for spec.database.dsnSecretRef) not found`},
		{"Two Secrets, one with two keys", []SecretProblem{
			{SecretUse: SecretUse{Name: "kafka-user", Keys: []string{"password", "username"}, Fields: []string{"spec.kafka.sasl.secretRef"}}},
			{SecretUse: SecretUse{Name: "shop-db", Keys: []string{"dsn"}, Fields: []string{"spec.database.dsnSecretRef"}}},
		}, `Secret "kafka-user" (keys "password", "username", for spec.kafka.sasl.secretRef) not found; Secret "shop-db" (key "dsn", for spec.database.dsnSecretRef) not found`},
		{"A Secret without one key", []SecretProblem{{SecretUse: SecretUse{Name: "shop-db", Keys: []string{"dsn"}, Fields: []string{"spec.database.dsnSecretRef"}}, MissingKey: "dsn"}},
			`Secret "shop-db" has no key "dsn" (for spec.database.dsnSecretRef)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := MissingSecretsMessage(tc.missing); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestSecretProblems(t *testing.T) {
	k := testSubscription()
	withAllSecrets(k)
	pod := func(uid string, started bool, waiting ...string) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "inventory-consumer-" + uid, UID: types.UID(uid)}}
		cs := corev1.ContainerStatus{Name: ContainerName}
		switch {
		case started:
			cs.State.Running = &corev1.ContainerStateRunning{}
		case len(waiting) == 2:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waiting[0], Message: waiting[1]}
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		return p
	}
	failedMount := func(uid, msg string) corev1.Event {
		return corev1.Event{
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", UID: types.UID(uid)},
			Reason:         "FailedMount",
			Message:        `MountVolume.SetUp failed for volume "secrets" : ` + msg,
		}
	}
	dsn := SecretUse{Name: "shop-db", Keys: []string{"dsn"}, Fields: []string{"spec.database.dsnSecretRef"}}
	cases := []struct {
		name   string
		pods   []corev1.Pod
		events []corev1.Event
		want   []SecretProblem
	}{
		{"No pods report nothing", nil, nil, nil},
		{"A running pod reports nothing", []corev1.Pod{pod("a", true)}, nil, nil},
		{"A missing Secret for an env variable is named with the keys the subscription reads from it",
			[]corev1.Pod{pod("a", false, "CreateContainerConfigError", `secret "shop-db" not found`)}, nil,
			[]SecretProblem{{SecretUse: dsn}}},
		{"A missing key for an env variable names the Secret and the key",
			[]corev1.Pod{pod("a", false, "CreateContainerConfigError", "couldn't find key dsn in Secret shop/shop-db")}, nil,
			[]SecretProblem{{SecretUse: SecretUse{Name: "shop-db", Keys: []string{"dsn"}, Fields: dsn.Fields}, MissingKey: "dsn"}}},
		{"A Secret that a FailedMount event names is missing while the pod waits for its volumes",
			[]corev1.Pod{pod("a", false)}, []corev1.Event{failedMount("a", `secret "shop-db" not found`)},
			[]SecretProblem{{SecretUse: dsn}}},
		{"A key that a FailedMount event names is found in the Secret that references it",
			[]corev1.Pod{pod("a", false)}, []corev1.Event{failedMount("a", `references non-existent secret key: username`)},
			[]SecretProblem{{SecretUse: SecretUse{Name: "kafka-user", Keys: []string{"username"}, Fields: []string{"spec.kafka.sasl.secretRef"}}, MissingKey: "username"}}},
		{"A FailedMount event of a pod that has started is history",
			[]corev1.Pod{pod("a", true)}, []corev1.Event{failedMount("a", `secret "shop-db" not found`)}, nil},
		{"A FailedMount event of another pod is not this subscription's",
			[]corev1.Pod{pod("a", false)}, []corev1.Event{failedMount("b", `secret "shop-db" not found`)}, nil},
		{"Two pods reporting the same Secret report it once",
			[]corev1.Pod{
				pod("a", false, "CreateContainerConfigError", `secret "shop-db" not found`),
				pod("b", false, "CreateContainerConfigError", `secret "shop-db" not found`),
			}, nil, []SecretProblem{{SecretUse: dsn}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SecretProblems(k, tc.pods, tc.events)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// A crash loop alternates between a waiting and a running container: Degraded stays while
// the container runs again and not every consumer is available, and clears once they are.
func TestConsumerFailureStaysWhileTheContainerRunsAgain(t *testing.T) {
	k := testSubscription()
	crashing := &ConsumerFailure{Pod: "p", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "ConsumerFailed: x"}
	recovering := *crashing
	recovering.Recovering = true
	unavailable, available := deployment(1, 1, 0, 0, 1), deployment(1, 1, 1, 1, 1)
	steps := []struct {
		name       string
		deployment *appsv1.Deployment
		failure    *ConsumerFailure
		want       string
	}{
		{"The container waits in CrashLoopBackOff", unavailable, crashing, kafkasubv1alpha1.ReasonConsumerCrashing},
		{"The container runs again, not ready", unavailable, &recovering, kafkasubv1alpha1.ReasonConsumerCrashing},
		{"The container crashes again", unavailable, crashing, kafkasubv1alpha1.ReasonConsumerCrashing},
		{"The container runs again and the Deployment is available", available, &recovering, kafkasubv1alpha1.ReasonAsExpected},
		{"The consumer turns unready (its database is down) with the old crash as its last state", unavailable, &recovering, kafkasubv1alpha1.ReasonAsExpected},
		{"The container crashes anew", unavailable, crashing, kafkasubv1alpha1.ReasonConsumerCrashing},
	}
	for _, step := range steps {
		k.Status = ComputeStatus(k, Observation{Deployment: step.deployment, ConsumerFailure: step.failure, Complete: true})
		c := meta.FindStatusCondition(k.Status.Conditions, kafkasubv1alpha1.ConditionDegraded)
		if c.Reason != step.want {
			t.Errorf("%s: Degraded reason %s (%s), want %s", step.name, c.Reason, c.Message, step.want)
		}
	}
}

// The condition reason is the consumer's termination reason: the user reads the same word
// in the pod's termination message and in the subscription's Degraded condition.
func TestHandlerNotRegisteredIsTheConsumersTerminationReason(t *testing.T) {
	if kafkasubv1alpha1.ReasonHandlerNotRegistered != consumer.TerminationHandlerNotRegistered {
		t.Errorf("condition reason %q, termination reason %q", kafkasubv1alpha1.ReasonHandlerNotRegistered, consumer.TerminationHandlerNotRegistered)
	}
}

func TestConsumerFailureOf(t *testing.T) {
	const notRegistered = `HandlerNotRegistered: handler "orders.status" is not registered in this consumer image (registered handlers: inventory.product-updates, orderstatus.updates)`
	terminated := func(code int32, reason, msg string) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}
	}
	crashLoop := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container=consumer"}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pod := func(name string, state corev1.ContainerState, last *corev1.ContainerStateTerminated, ready bool) corev1.Pod {
		cs := corev1.ContainerStatus{Name: ContainerName, State: state, Ready: ready}
		if last != nil {
			cs.LastTerminationState.Terminated = last
			cs.RestartCount = 3
		}
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{cs}}}
	}
	deleting := pod("a", corev1.ContainerState{Terminated: terminated(1, "Error", "ConsumerFailed: x")}, nil, false)
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	logTail := strings.Repeat("é", MaxConditionMessage) // two bytes each
	cases := []struct {
		name string
		pods []corev1.Pod
		want *ConsumerFailure
	}{
		{"No pods report nothing", nil, nil},
		{"A ready container reports nothing", []corev1.Pod{pod("a", running, nil, true)}, nil},
		{"A container that exited because its handler is not registered reports HandlerNotRegistered with its message verbatim",
			[]corev1.Pod{pod("a", corev1.ContainerState{Terminated: terminated(1, "Error", notRegistered)}, nil, false)},
			&ConsumerFailure{Pod: "a", Reason: kafkasubv1alpha1.ReasonHandlerNotRegistered, Message: notRegistered}},
		{"A container in CrashLoopBackOff reports its last termination message",
			[]corev1.Pod{pod("a", crashLoop, terminated(1, "Error", notRegistered), false)},
			&ConsumerFailure{Pod: "a", Reason: kafkasubv1alpha1.ReasonHandlerNotRegistered, Message: notRegistered}},
		{"A container in CrashLoopBackOff with another error reports ConsumerCrashing",
			[]corev1.Pod{pod("a", crashLoop, terminated(1, "Error", "ConsumerFailed: database: dial tcp 10.0.0.1:5432: connection refused\n"), false)},
			&ConsumerFailure{Pod: "a", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "ConsumerFailed: database: dial tcp 10.0.0.1:5432: connection refused"}},
		{"A message the consumer did not write (a log tail the kubelet took) is reported as it is",
			[]corev1.Pod{pod("a", crashLoop, terminated(2, "Error", "panic: boom"), false)},
			&ConsumerFailure{Pod: "a", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "panic: boom"}},
		{"A container killed without a message reports its exit code and the kubelet's reason",
			[]corev1.Pod{pod("a", crashLoop, terminated(137, "OOMKilled", ""), false)},
			&ConsumerFailure{Pod: "a", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "The consumer container of pod a exited with code 137 (OOMKilled) without a termination message"}},
		{"A container that stopped cleanly (a rotated Secret) reports nothing",
			[]corev1.Pod{pod("a", corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}, terminated(0, "Completed", ""), false)}, nil},
		{"A container that runs again after a crash is recovering, ready or not (the pod cache keeps no readiness)",
			[]corev1.Pod{pod("a", running, terminated(1, "Error", "ConsumerFailed: x"), true)},
			&ConsumerFailure{Pod: "a", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "ConsumerFailed: x", Recovering: true}},
		{"A container that runs after a clean stop reports nothing",
			[]corev1.Pod{pod("a", running, terminated(0, "Completed", ""), false)}, nil},
		{"A pod being deleted reports nothing", []corev1.Pod{deleting}, nil},
		{"A long message is cut on a character boundary",
			[]corev1.Pod{pod("a", crashLoop, terminated(2, "Error", logTail), false)},
			&ConsumerFailure{Pod: "a", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: logTail[:MaxConditionMessage-len(" [...]")] + " [...]"}},
		{"HandlerNotRegistered in one pod comes before a crash in another",
			[]corev1.Pod{pod("a", crashLoop, terminated(1, "Error", "ConsumerFailed: x"), false), pod("b", crashLoop, terminated(1, "Error", notRegistered), false)},
			&ConsumerFailure{Pod: "b", Reason: kafkasubv1alpha1.ReasonHandlerNotRegistered, Message: notRegistered}},
		{"A crashing pod comes before a recovering one",
			[]corev1.Pod{pod("a", running, terminated(1, "Error", "ConsumerFailed: x"), false), pod("b", crashLoop, terminated(1, "Error", "ConsumerFailed: y"), false)},
			&ConsumerFailure{Pod: "b", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "ConsumerFailed: y"}},
		{"Of two crashing pods the first by name is reported",
			[]corev1.Pod{pod("b", crashLoop, terminated(1, "Error", "ConsumerFailed: y"), false), pod("a", crashLoop, terminated(1, "Error", "ConsumerFailed: x"), false)},
			&ConsumerFailure{Pod: "a", Reason: kafkasubv1alpha1.ReasonConsumerCrashing, Message: "ConsumerFailed: x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ConsumerFailureOf(tc.pods)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if got != nil && (len(got.Message) > MaxConditionMessage || !utf8.ValidString(got.Message)) {
				t.Errorf("message of %d bytes, valid UTF-8 %t", len(got.Message), utf8.ValidString(got.Message))
			}
		})
	}
}
