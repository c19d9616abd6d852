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
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// Polling of the consumer pods' status endpoints (consumer.StatusPath).
const (
	// DefaultStatusPollInterval is how often the operator asks a subscription's consumer
	// pods for their status at most.
	DefaultStatusPollInterval = 10 * time.Second
	// DefaultStatusPort is the port of the status endpoint of a pod whose consumer
	// container names no HealthPortName port.
	DefaultStatusPort = 8081
	// statusPollTimeout bounds one pod's answer.
	statusPollTimeout = 2 * time.Second
	// statusPollConcurrency is the most pods of one subscription asked at once.
	statusPollConcurrency = 5
	// staleReportPolls is after how many poll intervals without an answer a pod's last
	// report no longer counts.
	staleReportPolls = 3
	// maxStatusBody is the most of an answer read.
	maxStatusBody = 1 << 20
)

const logStatusPollFailed = "Consumer pod did not report its status"

// PodReport is what one consumer pod answered at its status endpoint, and when.
type PodReport struct {
	Pod    string
	At     time.Time
	Status consumer.Status
}

// ConsumersSummary is what the consumer pods of a subscription report together.
type ConsumersSummary struct {
	// Running is the number of consumer pods that run and have an IP (those asked).
	Running int
	// Answered is the number of them whose report is fresh.
	Answered int
	// Lag is nil when no pod answered.
	Lag *kafkasubv1alpha1.ConsumerLag
	// DeadLetters is nil when no pod answered.
	DeadLetters *kafkasubv1alpha1.DeadLetterCount
	// LastError is the latest error of any report, nil when none reports one.
	LastError *kafkasubv1alpha1.ConsumerError
	// DatabaseDown and NotJoined name the pods that report so, sorted.
	DatabaseDown, NotJoined []string
}

// SummarizeConsumers aggregates the reports of a subscription's running consumer pods:
// reports older than staleAfter are left out; a partition two pods report (one has not
// noticed a rebalance yet) counts once, from the newer report; lags are summed and then
// rounded (RoundLag), dead-letter counts summed, the latest last error kept.
func SummarizeConsumers(running int, reports []PodReport, now time.Time, staleAfter time.Duration) ConsumersSummary {
	sum := ConsumersSummary{Running: running}
	fresh := make([]PodReport, 0, len(reports))
	for _, r := range reports {
		if now.Sub(r.At) <= staleAfter {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return sum
	}
	sum.Answered = len(fresh)
	// Newest first, so the first report of a partition is the one that counts.
	slices.SortStableFunc(fresh, func(a, b PodReport) int { return b.At.Compare(a.At) })

	lags := map[int32]int64{}
	dl := &kafkasubv1alpha1.DeadLetterCount{}
	var lastErr *consumer.ErrorStatus
	for _, r := range fresh {
		s := r.Status
		for _, p := range s.Partitions {
			if _, seen := lags[p.Partition]; seen || p.Lag == nil {
				continue
			}
			lags[p.Partition] = *p.Lag
		}
		dl.Count += s.Messages.DeadLettered
		if t := s.LastDeadLetterAt; t != nil && (dl.LastTime == nil || t.After(dl.LastTime.Time)) {
			dl.LastTime = statusTime(*t)
		}
		if e := s.LastError; e != nil && (lastErr == nil || e.Time.After(lastErr.Time)) {
			lastErr = e
		}
		if !s.DatabaseUp {
			sum.DatabaseDown = append(sum.DatabaseDown, r.Pod)
		}
		if !s.Joined {
			sum.NotJoined = append(sum.NotJoined, r.Pod)
		}
	}
	slices.Sort(sum.DatabaseDown)
	slices.Sort(sum.NotJoined)

	lag := &kafkasubv1alpha1.ConsumerLag{}
	var total int64
	for p, l := range lags {
		total += l
		lag.Partitions = append(lag.Partitions, kafkasubv1alpha1.PartitionLag{Partition: p, Lag: RoundLag(l)})
	}
	lag.Total = RoundLag(total)
	slices.SortFunc(lag.Partitions, func(a, b kafkasubv1alpha1.PartitionLag) int {
		if a.Lag != b.Lag {
			return int(b.Lag - a.Lag)
		}
		return int(a.Partition - b.Partition)
	})
	if len(lag.Partitions) > kafkasubv1alpha1.MaxLagPartitions {
		lag.Partitions = lag.Partitions[:kafkasubv1alpha1.MaxLagPartitions]
	}
	sum.Lag, sum.DeadLetters = lag, dl
	if lastErr != nil {
		sum.LastError = &kafkasubv1alpha1.ConsumerError{
			Class: string(lastErr.Class), Message: cutTo(lastErr.Message, kafkasubv1alpha1.MaxLastErrorMessage), Time: *statusTime(lastErr.Time),
		}
	}
	return sum
}

// RoundLag rounds a lag to two significant digits (1,003 to 1,000; 12,345 to 12,000), so a
// lag that only moves a little does not change the status.
func RoundLag(v int64) int64 {
	if v < 100 {
		return v
	}
	p := int64(1)
	for v/p >= 100 {
		p *= 10
	}
	return (v + p/2) / p * p
}

// statusTime is t as the API server keeps it: in seconds, so a status read back compares
// equal to the one computed.
func statusTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// cutTo cuts s to at most n bytes on a UTF-8 boundary.
func cutTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ConsumerPoller asks the consumer pods of each subscription for their status in the
// background: a reconcile takes the reports of the last poll and starts the next one when
// it is due, so a slow or unreachable pod never delays a reconcile. A finished poll
// enqueues its subscription through Done.
type ConsumerPoller struct {
	// Interval is the least time between two polls of one subscription.
	Interval time.Duration
	// Client asks the pods; its timeout bounds one answer.
	Client *http.Client
	// Done receives the subscription of every finished poll.
	Done chan event.GenericEvent

	mu   sync.Mutex
	subs map[types.NamespacedName]*subscriptionPolls
}

// subscriptionPolls is the poll state of one subscription.
type subscriptionPolls struct {
	polling  bool
	answered bool // a poll finished
	started  time.Time
	reports  map[string]PodReport // by pod name: the last answer of each pod
}

// NewConsumerPoller returns a poller that polls each subscription at most every interval.
func NewConsumerPoller(interval time.Duration) *ConsumerPoller {
	if interval <= 0 {
		interval = DefaultStatusPollInterval
	}
	return &ConsumerPoller{
		Interval: interval,
		Client: &http.Client{Timeout: statusPollTimeout, Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: 2 * interval,
			DialContext: (&net.Dialer{Timeout: statusPollTimeout}).DialContext,
		}},
		Done: make(chan event.GenericEvent, 1024),
		subs: map[types.NamespacedName]*subscriptionPolls{},
	}
}

// statusTarget is a pod to ask and where.
type statusTarget struct {
	pod, url string
}

// statusTargets returns the pods that can answer: running, with an IP, not being deleted.
func statusTargets(pods []corev1.Pod) []statusTarget {
	var out []statusTarget
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			continue
		}
		port := int32(DefaultStatusPort)
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == HealthPortName {
					port = cp.ContainerPort
				}
			}
		}
		url := "http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port))) + consumer.StatusPath
		out = append(out, statusTarget{pod: p.Name, url: url})
	}
	return out
}

// Observe returns what the subscription's pods reported (nil before the first poll of a
// pod that runs finished) and starts a poll when one is due. requeue is when the next
// poll is due, 0 when no pod runs.
func (cp *ConsumerPoller) Observe(ctx context.Context, key types.NamespacedName, pods []corev1.Pod) (sum *ConsumersSummary, requeue time.Duration) {
	targets := statusTargets(pods)
	now := time.Now()
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.subs[key]
	if len(targets) == 0 {
		delete(cp.subs, key)
		return &ConsumersSummary{}, 0
	}
	if st == nil {
		st = &subscriptionPolls{reports: map[string]PodReport{}}
		cp.subs[key] = st
	}
	running := map[string]bool{}
	for _, t := range targets {
		running[t.pod] = true
	}
	for pod := range st.reports {
		if !running[pod] {
			delete(st.reports, pod)
		}
	}
	next := st.started.Add(cp.Interval)
	if !st.polling && !now.Before(next) {
		st.polling, st.started = true, now
		next = now.Add(cp.Interval)
		go cp.poll(log.IntoContext(context.WithoutCancel(ctx), log.FromContext(ctx)), key, targets)
	}
	requeue = max(time.Until(next), time.Second)
	if !st.answered {
		return nil, requeue // no poll has finished yet
	}
	reports := make([]PodReport, 0, len(st.reports))
	for _, r := range st.reports {
		reports = append(reports, r)
	}
	s := SummarizeConsumers(len(targets), reports, now, staleReportPolls*cp.Interval)
	return &s, requeue
}

// Forget drops what the poller knows of a deleted subscription.
func (cp *ConsumerPoller) Forget(key types.NamespacedName) {
	cp.mu.Lock()
	delete(cp.subs, key)
	cp.mu.Unlock()
}

// poll asks the targets, at most statusPollConcurrency at once, keeps the answers and
// enqueues the subscription. Each answer is bounded by statusPollTimeout, so a poll ends
// even when the reconcile's context was cancelled long before.
func (cp *ConsumerPoller) poll(ctx context.Context, key types.NamespacedName, targets []statusTarget) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, statusPollConcurrency)
	answers := make([]*PodReport, len(targets))
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s, err := cp.fetch(ctx, t.url)
			if err != nil {
				log.FromContext(ctx).V(1).Info(logStatusPollFailed, "pod", t.pod, "reason", err.Error())
				return
			}
			answers[i] = &PodReport{Pod: t.pod, At: time.Now(), Status: s}
		}()
	}
	wg.Wait()
	cp.mu.Lock()
	st := cp.subs[key]
	if st != nil {
		st.polling, st.answered = false, true
		for _, a := range answers {
			if a != nil {
				st.reports[a.Pod] = *a
			}
		}
	}
	cp.mu.Unlock()
	if st == nil {
		return
	}
	ev := event.GenericEvent{Object: &kafkasubv1alpha1.KafkaSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}}
	select {
	case cp.Done <- ev:
	default: // the queue is full: the reconcile's RequeueAfter picks the reports up
	}
}

// fetch GETs one pod's status.
func (cp *ConsumerPoller) fetch(ctx context.Context, url string) (consumer.Status, error) {
	var s consumer.Status
	ctx, cancel := context.WithTimeout(ctx, statusPollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	resp, err := cp.Client.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxStatusBody))
		return s, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusBody)).Decode(&s); err != nil {
		return s, fmt.Errorf("decode the status of %s: %w", url, err)
	}
	if s.Version != consumer.StatusVersion {
		return s, fmt.Errorf("%s: status version %d, the operator reads %d", url, s.Version, consumer.StatusVersion)
	}
	return s, nil
}
