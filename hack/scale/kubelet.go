package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/controllers"
)

// fakeNode is the node the consumer pods are bound to; it does not exist, and nothing
// checks.
const fakeNode = "scale-node"

// consumerShape is what every fake consumer reports: how many partitions its subscription
// has (spread over the replicas), the lag of each, and how far that lag moves per answer.
type consumerShape struct {
	partitions int
	lag        int64
	jitter     int64 // 0: nothing moves; otherwise each answer consumes and the lag is lag..lag+jitter
}

// kubelet plays the kubelet for the consumer pods: it binds each pod to fakeNode, serves
// a consumer.Status at the pod's health port on a loopback address of its own
// (127.88.x.y; Linux routes 127.0.0.0/8 to lo) and reports the pod Running and Ready
// with that address as its IP.
type kubelet struct {
	c     client.Client
	shape consumerShape

	mu      sync.Mutex
	pods    map[types.UID]*fakePod
	perSub  map[string]int // pods started per subscription: the next one's index
	nextIP  int
	lastErr error
	servers []*http.Server
}

func newKubelet(c client.Client, shape consumerShape) *kubelet {
	return &kubelet{c: c, shape: shape, pods: map[types.UID]*fakePod{}, perSub: map[string]int{}}
}

// run starts every consumer pod that appears, once a second, until ctx is done.
func (k *kubelet) run(ctx context.Context) {
	for ctx.Err() == nil {
		pods := &corev1.PodList{}
		if err := k.c.List(ctx, pods, client.HasLabels{controllers.LabelSubscription}); err != nil {
			k.setErr(err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			k.mu.Lock()
			_, known := k.pods[p.UID]
			k.mu.Unlock()
			if known || p.DeletionTimestamp != nil {
				continue
			}
			if err := k.start(ctx, p); err != nil {
				k.setErr(fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err))
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (k *kubelet) setErr(err error) {
	k.mu.Lock()
	k.lastErr = err
	k.mu.Unlock()
}

// started returns how many pods run and the last error starting one.
func (k *kubelet) started() (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pods), k.lastErr
}

// requests returns the /status requests each pod has answered.
func (k *kubelet) requests() map[types.UID]int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[types.UID]int64, len(k.pods))
	for uid, p := range k.pods {
		out[uid] = p.requests.Load()
	}
	return out
}

func (k *kubelet) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range k.servers {
		_ = s.Close()
	}
}

// start binds the pod, serves its status and reports it running.
func (k *kubelet) start(ctx context.Context, pod *corev1.Pod) error {
	sub := pod.Labels[controllers.LabelSubscription]
	if pod.Spec.NodeName == "" {
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name},
			Target:     corev1.ObjectReference{Kind: "Node", Name: fakeNode},
		}
		if err := k.c.SubResource("binding").Create(ctx, pod, binding); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
	}
	ksub := &unstructured.Unstructured{}
	ksub.SetGroupVersionKind(ksubGVK)
	if err := k.c.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: sub}, ksub); err != nil {
		return fmt.Errorf("get its subscription: %w", err)
	}

	k.mu.Lock()
	ip := fmt.Sprintf("127.88.%d.%d", k.nextIP/250, k.nextIP%250+1)
	k.nextIP++
	k.mu.Unlock()
	port := int32(controllers.DefaultStatusPort)
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == controllers.HealthPortName {
				port = cp.ContainerPort
			}
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	fp := k.newFakePod(pod, ksub)
	srv := &http.Server{Handler: fp, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	now := metav1.Now()
	base := pod.DeepCopy()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.HostIP, pod.Status.HostIPs = "127.0.0.1", []corev1.HostIP{{IP: "127.0.0.1"}}
	pod.Status.PodIP, pod.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	pod.Status.ContainerStatuses = nil
	started := true
	for i, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: fmt.Sprintf("fake://%s-%d", pod.UID, i),
			Ready: true, Started: &started, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if err := k.c.Status().Patch(ctx, pod, client.MergeFrom(base)); err != nil {
		_ = srv.Close()
		return fmt.Errorf("report it running: %w", err)
	}
	k.mu.Lock()
	k.pods[pod.UID] = fp
	k.servers = append(k.servers, srv)
	k.mu.Unlock()
	return nil
}

// fakePod is one consumer pod's status endpoint.
type fakePod struct {
	jitter   int64
	lag      int64
	requests atomic.Int64

	mu     sync.Mutex
	status consumer.Status
}

// newFakePod describes an idle consumer that has joined its group and reaches its
// database: its share of the subscription's partitions, each lag behind its high-water
// mark, nothing applied, dead-lettered or retried.
func (k *kubelet) newFakePod(pod *corev1.Pod, ksub *unstructured.Unstructured) *fakePod {
	sub := ksub.GetName()
	k.mu.Lock()
	index := k.perSub[pod.Namespace+"/"+sub]
	k.perSub[pod.Namespace+"/"+sub]++
	k.mu.Unlock()
	replicas, _, _ := unstructured.NestedInt64(ksub.Object, "spec", "replicas")
	replicas = max(replicas, 1)
	topic, _, _ := unstructured.NestedString(ksub.Object, "spec", "kafka", "topic")
	group, _, _ := unstructured.NestedString(ksub.Object, "spec", "kafka", "consumerGroup")
	if group == "" {
		group = ksub.GetNamespace() + "." + sub
	}
	dlq, _, _ := unstructured.NestedString(ksub.Object, "spec", "deadLetter", "topic")

	fp := &fakePod{jitter: k.shape.jitter, lag: k.shape.lag}
	s := consumer.Status{
		Version: consumer.StatusVersion, Subscription: sub, Group: group, Topic: topic,
		Joined: true, DatabaseUp: true, StartedAt: time.Now().UTC().Truncate(time.Second),
		Partitions: []consumer.PartitionStatus{},
		DeadLetter: consumer.DeadLetterStatus{Topic: dlq, Partitions: int32(k.shape.partitions), Affinity: true},
	}
	for p := index % int(replicas); p < k.shape.partitions; p += int(replicas) {
		hwm := int64(1_000_000 + 1000*p)
		committed, stored, lag := hwm-k.shape.lag, hwm-k.shape.lag-1, k.shape.lag
		s.Partitions = append(s.Partitions, consumer.PartitionStatus{
			Partition: int32(p), Committed: &committed, Stored: &stored, HighWaterMark: hwm, Lag: &lag,
		})
		s.Lag += lag
	}
	fp.status = s
	return fp
}

// ServeHTTP answers consumer.StatusPath; with jitter, every answer first consumes some
// messages, leaving each partition's lag between lag and lag+jitter.
func (fp *fakePod) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != consumer.StatusPath {
		http.NotFound(w, r)
		return
	}
	fp.requests.Add(1)
	fp.mu.Lock()
	if fp.jitter > 0 {
		fp.status.Lag = 0
		for i := range fp.status.Partitions {
			p := &fp.status.Partitions[i]
			// The high-water mark moves by at least jitter, so the committed offset never
			// goes back.
			p.HighWaterMark += fp.jitter + rand.Int64N(100)
			lag := fp.lag + rand.Int64N(fp.jitter+1)
			committed, stored := p.HighWaterMark-lag, p.HighWaterMark-lag-1
			fp.status.Messages.Applied += committed - *p.Committed
			p.Committed, p.Stored, p.Lag = &committed, &stored, &lag
			fp.status.Lag += lag
		}
	}
	body, err := json.Marshal(fp.status)
	fp.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// maxJitter is the most a partition's lag can move above lag so that neither its rounded
// lag nor the rounded total of partitions such partitions changes (controllers.RoundLag);
// 0 when lag is below 100, which RoundLag keeps exact.
func maxJitter(lag int64, partitions int) int64 {
	k := int64(partitions)
	j := int64(0)
	for controllers.RoundLag(lag+j+1) == controllers.RoundLag(lag) &&
		controllers.RoundLag(k*(lag+j+1)) == controllers.RoundLag(k*lag) {
		j++
	}
	return j
}
