package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
	"github.com/kafkasub/kafkasub/controllers"
)

// statusPollInterval is the manager's --status-poll-interval here: shorter than the
// default, so that what the consumers report reaches the status within seconds.
const statusPollInterval = 2 * time.Second

// waitStatus waits until the subscription's status satisfies cond, which says what it saw,
// and returns the subscription.
func (s *scenario) waitStatus(t *testing.T, what string, cond func(st *kafkasubv1alpha1.KafkaSubscriptionStatus) (bool, string)) *kafkasubv1alpha1.KafkaSubscription {
	t.Helper()
	var ks kafkasubv1alpha1.KafkaSubscription
	s.waitFor(t, "status: "+what, 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		if err := s.cp.client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: s.name}, &ks); err != nil {
			return false, "", err
		}
		ok, seen := cond(&ks.Status)
		return ok, seen, nil
	})
	return &ks
}

// hasCondition reports whether the status has condition typ with status and reason, and
// describes the condition as found.
func hasCondition(st *kafkasubv1alpha1.KafkaSubscriptionStatus, typ string, status metav1.ConditionStatus, reason string) (bool, string) {
	c := meta.FindStatusCondition(st.Conditions, typ)
	if c == nil {
		return false, typ + " missing"
	}
	return c.Status == status && c.Reason == reason, fmt.Sprintf("%s=%s %s %q", typ, c.Status, c.Reason, c.Message)
}

// describeConsumerStatus is a one-line account of the status's consumer fields.
func describeConsumerStatus(st *kafkasubv1alpha1.KafkaSubscriptionStatus) string {
	var b strings.Builder
	if st.Lag != nil {
		fmt.Fprintf(&b, "lag %d %v", st.Lag.Total, st.Lag.Partitions)
	} else {
		b.WriteString("no lag")
	}
	if st.DeadLetters != nil {
		fmt.Fprintf(&b, ", %d dead letters (last %v)", st.DeadLetters.Count, st.DeadLetters.LastTime)
	}
	if e := st.LastError; e != nil {
		fmt.Fprintf(&b, ", last error %s %q", e.Class, e.Message)
	}
	for _, typ := range []string{kafkasubv1alpha1.ConditionConsumersJoined, kafkasubv1alpha1.ConditionDatabaseReady} {
		_, c := hasCondition(st, typ, "", "")
		b.WriteString(", " + c)
	}
	return b.String()
}

// consumersHealthy is the status of running consumers with their database up: both
// conditions True and no lag.
func consumersHealthy(st *kafkasubv1alpha1.KafkaSubscriptionStatus) (bool, string) {
	joined, _ := hasCondition(st, kafkasubv1alpha1.ConditionConsumersJoined, metav1.ConditionTrue, kafkasubv1alpha1.ReasonJoined)
	db, _ := hasCondition(st, kafkasubv1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, kafkasubv1alpha1.ReasonDatabaseAnswers)
	return joined && db && st.Lag != nil && st.Lag.Total == 0, describeConsumerStatus(st)
}

// consumerStatus asks a consumer process for its status, as the operator does.
func consumerStatus(ctx context.Context, pp *podProcess) (consumer.Status, error) {
	var st consumer.Status
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pp.healthURL+consumer.StatusPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET %s: %s", consumer.StatusPath, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// showSubscription logs `kubectl get ksub -o wide` and `kubectl describe ksub` of the
// subscription ns/name, as a person would see it at this moment, when KUBEBUILDER_ASSETS has
// a kubectl (hack/envtest.sh builds one); the assertions are on the API's status, so
// without kubectl it only says so.
func (s *scenario) showSubscription(t *testing.T, moment, ns, name string) {
	t.Helper()
	kubectl := filepath.Join(os.Getenv(envAssets), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Logf("%s: no kubectl in %s to show the subscription (hack/envtest.sh builds one)", moment, envAssets)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	for _, args := range [][]string{{"get", "ksub", "-o", "wide"}, {"describe", "ksub", name}} {
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", s.cp.kubeconfig, "-n", ns}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("%s: kubectl %s: %v", moment, strings.Join(args, " "), err)
		}
		t.Logf("%s: kubectl -n %s %s\n%s", moment, ns, strings.Join(args, " "), strings.TrimRight(string(out), "\n"))
	}
}

// deadLetterTopicCreated runs a subscription with deadLetter.create whose dead-letter topic
// does not exist, on a source topic of three partitions: its consumer creates the topic
// with three partitions, reports so at its status endpoint, and a message of partition 2
// is dead-lettered to partition 2 (partition affinity).
func (s *scenario) deadLetterTopicCreated(t *testing.T, ns string) {
	const name = "dlq-create"
	const sourcePartitions = 3
	suffix := strings.TrimPrefix(consumertest.UniqueName(""), "_")
	topic, dlq := "dlq_create_source."+suffix, "dlq_create_source.dlq."+suffix
	consumertest.CreateTopics(t, s.brokers, sourcePartitions, topic)
	if md, err := s.admin.DescribeTopics([]string{dlq}); err != nil || len(md) != 1 || !errors.Is(md[0].Err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("the dead-letter topic %s before the consumer starts: %v %+v; want it unknown to the brokers", dlq, err, md)
	}

	must(t, s.cp.client.Create(s.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-db"}, StringData: map[string]string{"dsn": consumertest.SQLiteDSN(t)}}))
	k := s.sideSubscription(ns, name, topic, dlq, consumer.DriverSQLite, name+"-db")
	k.Spec.Handler = kafkasubv1alpha1.Handler(inventory.HandlerName)
	k.Spec.DeadLetter.Create = true
	must(t, s.cp.client.Create(s.ctx, k))
	t.Logf("KafkaSubscription %s/%s: topic %s (%d partitions), deadLetter {topic: %s, create: true}, a topic the brokers do not have", ns, name, topic, sourcePartitions, dlq)
	kl := startKubelet(t, s.cp, kubeletConfig{bin: s.bin}, ns,
		map[string]string{controllers.LabelInstance: name, controllers.LabelComponent: controllers.ComponentConsumer})

	var st consumer.Status
	s.waitWith(t, kl, "the consumer ready, reporting the dead-letter topic it created", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		procs := kl.running()
		if len(procs) != 1 {
			return false, fmt.Sprintf("%d consumers", len(procs)), nil
		}
		if ok, status := procs[0].ready(ctx); !ok {
			return false, status, nil
		}
		var err error
		st, err = consumerStatus(ctx, procs[0])
		return err == nil && st.DeadLetter.Partitions > 0, fmt.Sprintf("%+v", st.DeadLetter), err
	})
	if want := (consumer.DeadLetterStatus{Topic: dlq, Partitions: sourcePartitions, Affinity: true, Created: true}); st.DeadLetter != want {
		t.Errorf("the consumer reports the dead-letter topic %+v, want %+v", st.DeadLetter, want)
	}
	md, err := s.admin.DescribeTopics([]string{dlq})
	if err != nil || len(md) != 1 || !errors.Is(md[0].Err, sarama.ErrNoError) {
		t.Fatalf("describe the dead-letter topic %s: %v %+v", dlq, err, md)
	}
	if n := len(md[0].Partitions); n != sourcePartitions {
		t.Errorf("the consumer created %s with %d partitions, want the source's %d", dlq, n, sourcePartitions)
	}
	t.Logf("the consumer created %s with %d partitions", dlq, len(md[0].Partitions))

	const bad = "this is no good"
	_, offset, err := s.producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 2, Value: sarama.StringEncoder(bad)})
	must(t, err)
	t.Logf("produced %q to %s/2 at offset %d", bad, topic, offset)
	var recs []*sarama.ConsumerMessage
	s.waitWith(t, kl, "the dead letter", 2*time.Minute, func(context.Context) (bool, string, error) {
		recs = consumertest.ReadTopic(t, s.brokers, dlq, 1, 0)
		return len(recs) >= 1, fmt.Sprintf("%d records", len(recs)), nil
	})
	if len(recs) != 1 || string(recs[0].Value) != bad || recs[0].Partition != 2 {
		t.Errorf("dead letters %s, want %q in partition 2, the partition of its message", describeRecords(recs), bad)
	}
	s.deleteSide(t, kl, ns, name)
}

// describeRecords lists records as partition/offset: value.
func describeRecords(recs []*sarama.ConsumerMessage) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d/%d: %q", r.Partition, r.Offset, r.Value)
	}
	return "[" + strings.Join(out, ", ") + "]"
}
