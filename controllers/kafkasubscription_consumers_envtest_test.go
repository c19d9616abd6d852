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
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// fakeConsumerStatus serves a consumer.Status at consumer.StatusPath, as a consumer pod's
// health port does, and counts the requests.
type fakeConsumerStatus struct {
	mu       sync.Mutex
	status   consumer.Status
	requests atomic.Int64
}

func (f *fakeConsumerStatus) set(s consumer.Status) {
	f.mu.Lock()
	f.status = s
	f.mu.Unlock()
}

func (f *fakeConsumerStatus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != consumer.StatusPath {
		http.NotFound(w, r)
		return
	}
	f.requests.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(f.status)
}

var _ = Describe("KafkaSubscription status from the consumer pods", func() {
	It("shows lag, dead letters, the last error, DatabaseReady and ConsumersJoined, and writes nothing for a lag that moves a little", func() {
		ctx := context.Background()
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ksub-"}}
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		ns := n.Name

		errAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
		st := consumer.Status{
			Version: consumer.StatusVersion, Subscription: "orders", Joined: true, DatabaseUp: true,
			Partitions: []consumer.PartitionStatus{
				{Partition: 0, Committed: ptr.To[int64](10), HighWaterMark: 1010, Lag: ptr.To[int64](1000)},
				{Partition: 1, Committed: ptr.To[int64](5), HighWaterMark: 5, Lag: ptr.To[int64](0)},
			},
			Lag:              1000,
			Messages:         consumer.MessageCounts{Applied: 20, DeadLettered: 2},
			LastDeadLetterAt: &errAt,
			LastError:        &consumer.ErrorStatus{Class: consumer.ClassInvalidPayload, Permanent: true, Message: "payload is not JSON", Time: errAt},
		}
		fake := &fakeConsumerStatus{status: st}
		srv := httptest.NewServer(fake)
		DeferCleanup(srv.Close)
		_, portText, err := net.SplitHostPort(srv.Listener.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		port, err := strconv.Atoi(portText)
		Expect(err).NotTo(HaveOccurred())

		ksub := testSubscription()
		ksub.ObjectMeta = metav1.ObjectMeta{Name: "orders", Namespace: ns}
		Expect(k8sClient.Create(ctx, ksub)).To(Succeed())

		// A consumer pod whose health port is the test server's, running at 127.0.0.1.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "orders-consumer-abc12", Namespace: ns, Labels: StandardLabels(ksub)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Image: testConsumerImage,
				Ports: []corev1.ContainerPort{{Name: HealthPortName, ContainerPort: int32(port)}}}}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, Image: testConsumerImage, Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}}
		Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())

		key := types.NamespacedName{Namespace: ns, Name: "orders"}
		got := &kafkasubv1alpha1.KafkaSubscription{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
			s := got.Status
			g.Expect(s.Lag).To(Equal(&kafkasubv1alpha1.ConsumerLag{Total: 1000, Partitions: []kafkasubv1alpha1.PartitionLag{{Partition: 0, Lag: 1000}, {Partition: 1, Lag: 0}}}))
			g.Expect(s.DeadLetters).NotTo(BeNil())
			g.Expect(s.DeadLetters.Count).To(Equal(int64(2)))
			g.Expect(s.DeadLetters.LastTime.Time.Equal(errAt)).To(BeTrue())
			g.Expect(s.LastError).NotTo(BeNil())
			g.Expect(s.LastError.Class).To(Equal(string(consumer.ClassInvalidPayload)))
			g.Expect(s.LastError.Message).To(Equal("payload is not JSON"))
			g.Expect(s.LastError.Time.Time.Equal(errAt)).To(BeTrue())
			g.Expect(meta.IsStatusConditionTrue(s.Conditions, kafkasubv1alpha1.ConditionDatabaseReady)).To(BeTrue())
			g.Expect(meta.IsStatusConditionTrue(s.Conditions, kafkasubv1alpha1.ConditionConsumersJoined)).To(BeTrue())
		}).Should(Succeed())

		By("a lag of 1,003 instead of 1,000 writes nothing")
		writes, _ := managerWrites.in(ns)
		st.Partitions[0].HighWaterMark, st.Partitions[0].Lag, st.Lag = 1013, ptr.To[int64](1003), 1003
		fake.set(st)
		before := fake.requests.Load()
		Eventually(fake.requests.Load).Should(BeNumerically(">=", before+2)) // two polls of the new answer
		after, requests := managerWrites.in(ns)
		Expect(after).To(Equal(writes), "writes: %v", requests)

		By("a database that stops answering turns DatabaseReady False")
		st.DatabaseUp = false
		fake.set(st)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
			c := meta.FindStatusCondition(got.Status.Conditions, kafkasubv1alpha1.ConditionDatabaseReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonDatabaseUnreachable))
			g.Expect(c.Message).To(ContainSubstring(pod.Name))
		}).Should(Succeed())

		By("a change of the lag alone waits lagWritePolls polls after the last write, then is written")
		writes, _ = managerWrites.in(ns)
		st.Partitions[0].HighWaterMark, st.Partitions[0].Lag, st.Lag = 20, ptr.To[int64](10), 10
		fake.set(st)
		before = fake.requests.Load()
		Eventually(fake.requests.Load).Should(BeNumerically(">=", before+2))
		after, requests = managerWrites.in(ns)
		Expect(after).To(Equal(writes), "writes: %v", requests)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
			g.Expect(got.Status.Lag).NotTo(BeNil())
			g.Expect(got.Status.Lag.Total).To(Equal(int64(10)))
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})
})
