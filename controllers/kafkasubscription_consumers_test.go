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
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

var pollNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// report is a pod's answer at pollNow - age with the given partition lags.
func report(pod string, age time.Duration, lags map[int32]int64) PodReport {
	s := consumer.Status{Version: consumer.StatusVersion, Joined: true, DatabaseUp: true}
	for p, l := range lags {
		s.Partitions = append(s.Partitions, consumer.PartitionStatus{Partition: p, Lag: ptr.To(l)})
	}
	return PodReport{Pod: pod, At: pollNow.Add(-age), Status: s}
}

func TestSummarizeConsumers(t *testing.T) {
	const stale = 30 * time.Second
	withCounts := func(r PodReport, dead int64, lastDead, errAt time.Duration, class string) PodReport {
		r.Status.Messages.DeadLettered = dead
		if lastDead > 0 {
			r.Status.LastDeadLetterAt = ptr.To(pollNow.Add(-lastDead))
		}
		if errAt > 0 {
			r.Status.LastError = &consumer.ErrorStatus{Class: consumer.ErrorClass(class), Message: class + " happened", Time: pollNow.Add(-errAt)}
		}
		return r
	}
	down := report("inventory-consumer-b", 0, map[int32]int64{2: 5})
	down.Status.DatabaseUp, down.Status.Joined = false, false

	cases := []struct {
		name    string
		running int
		reports []PodReport
		want    ConsumersSummary
	}{
		{
			name:    "No report leaves lag, dead letters and the last error unknown.",
			running: 2,
			want:    ConsumersSummary{Running: 2},
		},
		{
			name:    "Two pods with two partitions each sum their lags and dead letters and keep the latest error and dead letter.",
			running: 2,
			reports: []PodReport{
				withCounts(report("inventory-consumer-a", time.Second, map[int32]int64{0: 1200, 1: 30}), 2, 10*time.Second, 5*time.Second, "InvalidPayload"),
				withCounts(report("inventory-consumer-b", 2*time.Second, map[int32]int64{2: 0, 3: 7}), 3, 20*time.Second, 3*time.Second, "ValidationFailed"),
			},
			want: ConsumersSummary{Running: 2, Answered: 2,
				Lag: &kafkasubv1alpha1.ConsumerLag{Total: 1200, Partitions: []kafkasubv1alpha1.PartitionLag{
					{Partition: 0, Lag: 1200}, {Partition: 1, Lag: 30}, {Partition: 3, Lag: 7}, {Partition: 2, Lag: 0}}},
				DeadLetters: &kafkasubv1alpha1.DeadLetterCount{Count: 5, LastTime: statusTime(pollNow.Add(-10 * time.Second))},
				LastError:   &kafkasubv1alpha1.ConsumerError{Class: "ValidationFailed", Message: "ValidationFailed happened", Time: *statusTime(pollNow.Add(-3 * time.Second))},
			},
		},
		{
			name:    "A pod that did not answer is missing from the numbers but counted as running.",
			running: 3,
			reports: []PodReport{report("inventory-consumer-a", 0, map[int32]int64{0: 40, 1: 2})},
			want: ConsumersSummary{Running: 3, Answered: 1,
				Lag:         &kafkasubv1alpha1.ConsumerLag{Total: 42, Partitions: []kafkasubv1alpha1.PartitionLag{{Partition: 0, Lag: 40}, {Partition: 1, Lag: 2}}},
				DeadLetters: &kafkasubv1alpha1.DeadLetterCount{}},
		},
		{
			name:    "A stale report is left out.",
			running: 2,
			reports: []PodReport{
				report("inventory-consumer-a", time.Second, map[int32]int64{0: 10, 1: 10}),
				withCounts(report("inventory-consumer-b", time.Minute, map[int32]int64{2: 900, 3: 900}), 7, 0, 0, ""),
			},
			want: ConsumersSummary{Running: 2, Answered: 1,
				Lag: &kafkasubv1alpha1.ConsumerLag{Total: 20, Partitions: []kafkasubv1alpha1.PartitionLag{{Partition: 0, Lag: 10}, {Partition: 1, Lag: 10}}}, DeadLetters: &kafkasubv1alpha1.DeadLetterCount{}},
		},
		{
			name:    "A partition two pods report after a rebalance counts once, from the newer report.",
			running: 2,
			reports: []PodReport{
				report("inventory-consumer-a", 5*time.Second, map[int32]int64{0: 500, 1: 3}),
				report("inventory-consumer-b", time.Second, map[int32]int64{1: 4, 2: 6}),
			},
			want: ConsumersSummary{Running: 2, Answered: 2,
				Lag: &kafkasubv1alpha1.ConsumerLag{Total: 510, Partitions: []kafkasubv1alpha1.PartitionLag{
					{Partition: 0, Lag: 500}, {Partition: 2, Lag: 6}, {Partition: 1, Lag: 4}}}, DeadLetters: &kafkasubv1alpha1.DeadLetterCount{}},
		},
		{
			name:    "A pod without its database or outside the group is named.",
			running: 2,
			reports: []PodReport{report("inventory-consumer-a", 0, nil), down},
			want: ConsumersSummary{Running: 2, Answered: 2,
				Lag:          &kafkasubv1alpha1.ConsumerLag{Total: 5, Partitions: []kafkasubv1alpha1.PartitionLag{{Partition: 2, Lag: 5}}},
				DeadLetters:  &kafkasubv1alpha1.DeadLetterCount{},
				DatabaseDown: []string{"inventory-consumer-b"}, NotJoined: []string{"inventory-consumer-b"}},
		},
		{
			name:    "The summed lag is rounded to two significant digits, each partition's too.",
			running: 1,
			reports: []PodReport{report("inventory-consumer-a", 0, map[int32]int64{0: 1003, 1: 1003})},
			want: ConsumersSummary{Running: 1, Answered: 1,
				Lag: &kafkasubv1alpha1.ConsumerLag{Total: 2000, Partitions: []kafkasubv1alpha1.PartitionLag{{Partition: 0, Lag: 1000}, {Partition: 1, Lag: 1000}}}, DeadLetters: &kafkasubv1alpha1.DeadLetterCount{}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SummarizeConsumers(tc.running, tc.reports, pollNow, stale)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSummarizeConsumersCapsPartitionsAndMessage(t *testing.T) {
	lags := map[int32]int64{}
	for p := range int32(100) {
		lags[p] = int64(p)
	}
	r := report("inventory-consumer-a", 0, lags)
	r.Status.LastError = &consumer.ErrorStatus{Class: consumer.ClassInvalidPayload, Message: strings.Repeat("é", 400), Time: pollNow}
	got := SummarizeConsumers(1, []PodReport{r}, pollNow, time.Minute)
	if n := len(got.Lag.Partitions); n != kafkasubv1alpha1.MaxLagPartitions {
		t.Fatalf("%d partitions listed, want %d", n, kafkasubv1alpha1.MaxLagPartitions)
	}
	if first := got.Lag.Partitions[0]; first.Partition != 99 {
		t.Errorf("first listed partition %d, want the one with the most lag, 99", first.Partition)
	}
	if m := got.LastError.Message; len(m) > kafkasubv1alpha1.MaxLastErrorMessage || !utf8.ValidString(m) {
		t.Errorf("last error message of %d bytes (valid UTF-8: %t), want at most %d", len(m), utf8.ValidString(m), kafkasubv1alpha1.MaxLastErrorMessage)
	}
}

func TestRoundLag(t *testing.T) {
	for in, want := range map[int64]int64{0: 0, 7: 7, 99: 99, 100: 100, 104: 100, 105: 110, 1003: 1000, 1049: 1000, 1050: 1100, 12345: 12000, 999999: 1000000} {
		if got := RoundLag(in); got != want {
			t.Errorf("RoundLag(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestStatusWriteDue(t *testing.T) {
	base := func() ConsumersSummary {
		return SummarizeConsumers(1, []PodReport{report("inventory-consumer-a", 0, map[int32]int64{0: 1000})}, pollNow, time.Minute)
	}
	errorAt := func(s ConsumersSummary, at time.Time) ConsumersSummary {
		s.LastError = &kafkasubv1alpha1.ConsumerError{Class: "InvalidPayload", Message: "bad", Time: *statusTime(at)}
		return s
	}
	cases := []struct {
		name string
		prev ConsumersSummary
		next ConsumersSummary
		want bool
	}{
		{name: "The same report writes nothing.", prev: base(), next: base(), want: false},
		{
			name: "A lag that moves from 1,000 to 1,003 writes nothing.", prev: base(),
			next: SummarizeConsumers(1, []PodReport{report("inventory-consumer-a", 0, map[int32]int64{0: 1003})}, pollNow, time.Minute),
			want: false,
		},
		{
			name: "A lag that moves from 1,000 to 1,100 is written.", prev: base(),
			next: SummarizeConsumers(1, []PodReport{report("inventory-consumer-a", 0, map[int32]int64{0: 1100})}, pollNow, time.Minute),
			want: true,
		},
		{
			name: "One more dead letter is written.", prev: base(),
			next: func() ConsumersSummary {
				s := base()
				s.DeadLetters = &kafkasubv1alpha1.DeadLetterCount{Count: 1}
				return s
			}(),
			want: true,
		},
		{name: "A new last error is written.", prev: base(), next: errorAt(base(), pollNow), want: true},
		{name: "The same last error, reported again a nanosecond apart, writes nothing.", prev: errorAt(base(), pollNow), next: errorAt(base(), pollNow.Add(time.Nanosecond)), want: false},
		{name: "An older last error than the one in the status writes nothing.", prev: errorAt(base(), pollNow), next: errorAt(base(), pollNow.Add(-time.Hour)), want: false},
		{
			name: "A database that stops answering is written.", prev: base(),
			next: func() ConsumersSummary { s := base(); s.DatabaseDown = []string{"inventory-consumer-a"}; return s }(),
			want: true,
		},
		{
			name: "A pod that does not answer once keeps the numbers and writes nothing.", prev: base(),
			next: func() ConsumersSummary { s := base(); s.Running = 2; return s }(),
			want: false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ksub := testSubscription()
			ksub.Status = ComputeStatus(ksub, Observation{Consumers: &tc.prev})
			ksub.Status = *roundTrip(t, &ksub.Status)
			next := ComputeStatus(ksub, Observation{Consumers: &tc.next})
			if got := StatusWriteDue(ksub.Status, next); got != tc.want {
				t.Errorf("StatusWriteDue = %t, want %t", got, tc.want)
			}
		})
	}
}

// roundTrip returns st as the API server would return it: times in seconds.
func roundTrip(t *testing.T, st *kafkasubv1alpha1.KafkaSubscriptionStatus) *kafkasubv1alpha1.KafkaSubscriptionStatus {
	t.Helper()
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	out := &kafkasubv1alpha1.KafkaSubscriptionStatus{}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConsumerConditions(t *testing.T) {
	cases := []struct {
		name             string
		sum              ConsumersSummary
		database, joined wantCondition
	}{
		{name: "No running pod: not joined, database unknown.", sum: ConsumersSummary{},
			database: wantCondition{metav1.ConditionUnknown, kafkasubv1alpha1.ReasonNoConsumers}, joined: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonNoConsumers}},
		{name: "Running pods that do not answer: both unknown.", sum: ConsumersSummary{Running: 2},
			database: wantCondition{metav1.ConditionUnknown, kafkasubv1alpha1.ReasonStatusUnreachable}, joined: wantCondition{metav1.ConditionUnknown, kafkasubv1alpha1.ReasonStatusUnreachable}},
		{name: "Pods that answer, joined and with their database: both true.", sum: ConsumersSummary{Running: 1, Answered: 1, Lag: &kafkasubv1alpha1.ConsumerLag{}, DeadLetters: &kafkasubv1alpha1.DeadLetterCount{}},
			database: wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonDatabaseAnswers}, joined: wantCondition{metav1.ConditionTrue, kafkasubv1alpha1.ReasonJoined}},
		{name: "A pod without its database and outside the group: both false.", sum: ConsumersSummary{Running: 1, Answered: 1, Lag: &kafkasubv1alpha1.ConsumerLag{}, DeadLetters: &kafkasubv1alpha1.DeadLetterCount{},
			DatabaseDown: []string{"p"}, NotJoined: []string{"p"}},
			database: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonDatabaseUnreachable}, joined: wantCondition{metav1.ConditionFalse, kafkasubv1alpha1.ReasonNotJoined}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := ComputeStatus(testSubscription(), Observation{Consumers: &tc.sum})
			for typ, want := range map[string]wantCondition{kafkasubv1alpha1.ConditionDatabaseReady: tc.database, kafkasubv1alpha1.ConditionConsumersJoined: tc.joined} {
				c := meta.FindStatusCondition(st.Conditions, typ)
				if c == nil || c.Status != want.status || c.Reason != want.reason {
					t.Errorf("%s = %+v, want %+v", typ, c, want)
				}
			}
		})
	}
	if st := ComputeStatus(testSubscription(), Observation{}); meta.FindStatusCondition(st.Conditions, kafkasubv1alpha1.ConditionDatabaseReady) != nil {
		t.Error("DatabaseReady set before any poll finished")
	}
}

// The lag is only known from running consumers: with none it is unknown (LAG empty), not the
// last value reported; pods that do not answer keep it as it was.
func TestLagIsUnknownWhileNoConsumerRuns(t *testing.T) {
	k := testSubscription()
	k.Status.Lag = &kafkasubv1alpha1.ConsumerLag{Total: 40, Partitions: []kafkasubv1alpha1.PartitionLag{{Partition: 0, Lag: 40}}}
	if st := ComputeStatus(k, Observation{Consumers: &ConsumersSummary{Running: 2}}); st.Lag == nil || st.Lag.Total != 40 {
		t.Errorf("pods that do not answer: lag %+v, want the last reported (40)", st.Lag)
	}
	if st := ComputeStatus(k, Observation{Consumers: &ConsumersSummary{}}); st.Lag != nil {
		t.Errorf("no consumer runs: lag %+v, want none", st.Lag)
	}
}

func TestLagChangeOnly(t *testing.T) {
	lag := func(total int64) *kafkasubv1alpha1.ConsumerLag {
		return &kafkasubv1alpha1.ConsumerLag{Total: total, Partitions: []kafkasubv1alpha1.PartitionLag{{Partition: 0, Lag: total}}}
	}
	joined := []metav1.Condition{{Type: kafkasubv1alpha1.ConditionConsumersJoined, Status: metav1.ConditionTrue, Reason: kafkasubv1alpha1.ReasonJoined}}
	for _, tc := range []struct {
		name      string
		cur, next kafkasubv1alpha1.KafkaSubscriptionStatus
		want      bool
	}{
		{"the lag alone moves", kafkasubv1alpha1.KafkaSubscriptionStatus{Lag: lag(3), Conditions: joined}, kafkasubv1alpha1.KafkaSubscriptionStatus{Lag: lag(40), Conditions: joined}, true},
		{"a first lag", kafkasubv1alpha1.KafkaSubscriptionStatus{Conditions: joined}, kafkasubv1alpha1.KafkaSubscriptionStatus{Lag: lag(40), Conditions: joined}, false},
		{"the lag becomes unknown", kafkasubv1alpha1.KafkaSubscriptionStatus{Lag: lag(3)}, kafkasubv1alpha1.KafkaSubscriptionStatus{}, false},
		{"the lag and a condition", kafkasubv1alpha1.KafkaSubscriptionStatus{Lag: lag(3)}, kafkasubv1alpha1.KafkaSubscriptionStatus{Lag: lag(40), Conditions: joined}, false},
		{"a dead letter", kafkasubv1alpha1.KafkaSubscriptionStatus{Lag: lag(3)}, kafkasubv1alpha1.KafkaSubscriptionStatus{Lag: lag(3), DeadLetters: &kafkasubv1alpha1.DeadLetterCount{Count: 1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LagChangeOnly(tc.cur, tc.next); got != tc.want {
				t.Errorf("LagChangeOnly = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestStatusTargets(t *testing.T) {
	pod := func(name string, phase corev1.PodPhase, ip string, port int32) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase, PodIP: ip}}
		c := corev1.Container{Name: "consumer"}
		if port != 0 {
			c.Ports = []corev1.ContainerPort{{Name: HealthPortName, ContainerPort: port}}
		}
		p.Spec.Containers = []corev1.Container{c}
		return p
	}
	got := statusTargets([]corev1.Pod{
		pod("a", corev1.PodRunning, "10.0.0.1", 9000),
		pod("b", corev1.PodRunning, "10.0.0.2", 0),
		pod("c", corev1.PodPending, "10.0.0.3", 9000),
		pod("d", corev1.PodRunning, "", 9000),
		pod("e", corev1.PodRunning, "fd00::1", 0),
	})
	want := []statusTarget{
		{pod: "a", url: "http://10.0.0.1:9000/status"},
		{pod: "b", url: "http://10.0.0.2:8081/status"},
		{pod: "e", url: "http://[fd00::1]:8081/status"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
