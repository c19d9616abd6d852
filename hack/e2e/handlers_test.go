package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
	"github.com/kafkasub/kafkasub/controllers"
)

// The example handler (examples/orderstatus) as a team would ship it: its own image,
// whose /kafkasub entrypoint the test kubelet maps to the binary built from the example's
// module.
const (
	ordersImage   = "orderstatus:e2e"
	ordersHandler = "orderstatus.updates"
)

// buildOrderStatusBinary builds the example's image binary as its README says (go build
// ./kafkasub in examples/orderstatus). It runs beside buildBinary, so it returns its error.
func (s *scenario) buildOrderStatusBinary(t *testing.T) (string, error) {
	bin := filepath.Join(t.TempDir(), "orderstatus")
	start := time.Now()
	cmd := exec.CommandContext(s.ctx, "go", "build", "-trimpath", "-o", bin, "./kafkasub")
	cmd.Dir = filepath.Join(repoRoot, "examples", "orderstatus")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the example handler's image (examples/orderstatus): %w\n%s", err, out)
	}
	t.Logf("built %s (the image %s: examples/orderstatus) in %s", bin, ordersImage, time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// goSideBySide runs the steps of the other handlers, each in its own goroutine next to the
// inventory steps, in a namespace of their own: the example handler's subscription and a
// subscription whose image lacks its handler. The returned function waits for them.
func (s *scenario) goSideBySide() (wait func()) {
	ns := uniqueKubeName("e2e-handlers")
	if err := s.cp.client.Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		s.t.Fatal(err)
	}
	steps := []struct {
		name string
		fn   func(t *testing.T, ns string)
	}{
		{"beside inventory: the example handler orderstatus.updates from its own image applies an update and dead-letters an unknown order and a non-JSON payload", s.exampleHandler},
		{"beside inventory: a subscription whose image lacks its handler turns Degraded, reason HandlerNotRegistered, with the consumer's termination message", s.handlerNotRegistered},
		{"beside inventory: a subscription with deadLetter.create and a missing dead-letter topic: the consumer creates it with the source's partitions and dead-letters to its message's partition", s.deadLetterTopicCreated},
	}
	var wg sync.WaitGroup
	for _, st := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.step(st.name, func(t *testing.T) { st.fn(t, ns) })
		}()
	}
	return wg.Wait
}

// sideSubscription is a KafkaSubscription of the side-by-side steps.
func (s *scenario) sideSubscription(ns, name, topic, dlq, driver, dsnSecret string) *kafkasubv1alpha1.KafkaSubscription {
	servers := make([]kafkasubv1alpha1.BootstrapServer, len(s.brokers))
	for i, b := range s.brokers {
		servers[i] = kafkasubv1alpha1.BootstrapServer(b)
	}
	return &kafkasubv1alpha1.KafkaSubscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kafkasubv1alpha1.KafkaSubscriptionSpec{
			Handler:    ordersHandler,
			Kafka:      kafkasubv1alpha1.KafkaSource{BootstrapServers: servers, Topic: kafkasubv1alpha1.TopicName(topic)},
			DeadLetter: kafkasubv1alpha1.DeadLetter{Topic: kafkasubv1alpha1.TopicName(dlq)},
			Database: kafkasubv1alpha1.Database{
				Driver:       kafkasubv1alpha1.DatabaseDriver(driver),
				DSNSecretRef: kafkasubv1alpha1.SecretKeyReference{Name: dsnSecret, Key: "dsn"},
				Migrate:      true,
			},
			Replicas: ptr.To[int32](1),
		},
	}
}

// exampleHandler runs the example handler's subscription: its own topic, dead-letter
// topic and table (database.migrate creates orders), from the image ordersImage.
func (s *scenario) exampleHandler(t *testing.T, ns string) {
	const name = "orders"
	suffix := strings.TrimPrefix(consumertest.UniqueName(""), "_")
	topic, dlq := "order_status_updates."+suffix, "order_status_updates.dlq."+suffix
	consumertest.CreateTopics(t, s.brokers, 1, topic, dlq)
	var dsn string
	if s.driver == consumer.DriverPostgres {
		dsn = consumertest.PostgresDSN(t) // a schema of its own
	} else {
		dsn = consumertest.SQLiteDSN(t)
	}
	db, err := consumer.OpenDatabase(s.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})

	must(t, s.cp.client.Create(s.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders-db"}, StringData: map[string]string{"dsn": dsn}}))
	k := s.sideSubscription(ns, name, topic, dlq, s.driver, "orders-db")
	k.Spec.Template.Image = ordersImage
	must(t, s.cp.client.Create(s.ctx, k))
	t.Logf("KafkaSubscription %s/%s: handler %s, image %s, topic %s, dead letters to %s, %s with database.migrate", ns, name, ordersHandler, ordersImage, topic, dlq, s.driver)
	kl := startKubelet(t, s.cp, kubeletConfig{bin: s.bin, images: map[string]string{ordersImage: s.ordersBin}}, ns,
		map[string]string{controllers.LabelInstance: name, controllers.LabelComponent: controllers.ComponentConsumer})

	s.waitWith(t, kl, "the orders subscription Ready=True and its consumer ready", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		var ks kafkasubv1alpha1.KafkaSubscription
		if err := s.cp.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ks); err != nil {
			return false, "", err
		}
		c := meta.FindStatusCondition(ks.Status.Conditions, kafkasubv1alpha1.ConditionReady)
		procs := kl.running()
		if c == nil || c.Status != metav1.ConditionTrue || len(procs) != 1 {
			return false, fmt.Sprintf("Ready %v, %d consumers", c, len(procs)), nil
		}
		ok, status := procs[0].ready(ctx)
		return ok, status, nil
	})
	if pp := kl.running()[0]; pp.bin != s.ordersBin {
		t.Fatalf("the orders consumer runs %s, want the example's image binary %s", pp.bin, s.ordersBin)
	}
	// The consumer migrated: the orders table exists. The shop's order service would have
	// created the order.
	must(t, db.WithContext(s.ctx).Exec("INSERT INTO orders (id, status, updated_at) VALUES (?, ?, ?)", "O-1", "pending", time.Now()).Error)

	cases := []struct {
		value string
		class consumer.ErrorClass
		msg   string
	}{
		{`{"order_id": "O-1", "status": "paid"}`, "", ""},
		{`{"order_id": "O-9", "status": "paid"}`, consumer.ClassValidationFailed, "Order O-9 does not exist"},
		{`this is no good`, consumer.ClassInvalidPayload, ""},
	}
	for _, c := range cases {
		_, offset, err := s.producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(c.value)})
		must(t, err)
		t.Logf("produced %s to %s/0 at offset %d", c.value, topic, offset)
	}
	s.waitWith(t, kl, "order O-1 paid", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		var status string
		err := db.WithContext(ctx).Raw("SELECT status FROM orders WHERE id = ?", "O-1").Scan(&status).Error
		return status == "paid", status, err
	})
	var recs []*sarama.ConsumerMessage
	s.waitWith(t, kl, "2 dead letters of the orders subscription", 2*time.Minute, func(context.Context) (bool, string, error) {
		recs = consumertest.ReadTopic(t, s.brokers, dlq, 2, 0)
		return len(recs) >= 2, fmt.Sprintf("%d records", len(recs)), nil
	})
	if len(recs) != 2 {
		t.Fatalf("%d dead letters, want 2", len(recs))
	}
	for i, c := range cases[1:] {
		r := recs[i]
		dl, err := consumer.ParseDeadLetter(consumer.HeadersFromSarama(r.Headers))
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Value) != c.value || dl.ErrorClass != c.class || !strings.Contains(dl.ErrorMessage, c.msg) ||
			dl.Subscription != ns+"/"+name || dl.OriginalTopic != topic {
			t.Errorf("dead letter %d: %q as %s %q of %s from %s; want %q as %s containing %q of %s from %s",
				i, r.Value, dl.ErrorClass, dl.ErrorMessage, dl.Subscription, dl.OriginalTopic, c.value, c.class, c.msg, ns+"/"+name, topic)
		}
		t.Logf("dead-lettered %s: %s: %s", r.Value, dl.ErrorClass, dl.ErrorMessage)
	}
	s.deleteSide(t, kl, ns, name)
}

// handlerNotRegistered runs a subscription that names the example's handler but leaves
// spec.template.image at the operator's default, the kafkasub image, which lacks it: the
// consumer exits with a termination message naming the handler and the registered ones,
// and the subscription turns Degraded with it.
func (s *scenario) handlerNotRegistered(t *testing.T, ns string) {
	const name = "orders-default-image"
	must(t, s.cp.client.Create(s.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-db"}, StringData: map[string]string{"dsn": consumertest.SQLiteDSN(t)}}))
	// The consumer never reaches Kafka or its database.
	k := s.sideSubscription(ns, name, "order_status_updates.unused", "order_status_updates.unused.dlq", consumer.DriverSQLite, name+"-db")
	must(t, s.cp.client.Create(s.ctx, k))
	t.Logf("KafkaSubscription %s/%s: handler %s, no spec.template.image (the operator's default, the kafkasub image)", ns, name, ordersHandler)
	kl := startKubelet(t, s.cp, kubeletConfig{bin: s.bin, expectCrashes: true}, ns,
		map[string]string{controllers.LabelInstance: name, controllers.LabelComponent: controllers.ComponentConsumer})

	// The consumer's own words: the kafkasub binary registers inventory only.
	want := fmt.Sprintf("%s: handler %q is not registered in this consumer image (registered handlers: %s)",
		consumer.TerminationHandlerNotRegistered, ordersHandler, inventory.HandlerName)
	var ks kafkasubv1alpha1.KafkaSubscription
	s.waitWith(t, kl, "Degraded=True HandlerNotRegistered with the termination message, the pod in CrashLoopBackOff", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		if err := s.cp.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ks); err != nil {
			return false, "", err
		}
		var pods corev1.PodList
		if err := s.cp.client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{controllers.LabelInstance: name}); err != nil {
			return false, "", err
		}
		var seen []string
		crashLoop := false
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				seen = append(seen, p.Name+": "+describeContainerStatus(cs))
				last := cs.LastTerminationState.Terminated
				if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && cs.RestartCount > 0 && last != nil && last.Message == want {
					crashLoop = true
				}
			}
		}
		d := meta.FindStatusCondition(ks.Status.Conditions, kafkasubv1alpha1.ConditionDegraded)
		r := meta.FindStatusCondition(ks.Status.Conditions, kafkasubv1alpha1.ConditionReady)
		seen = append(seen, fmt.Sprintf("Degraded %v, Ready %v", d, r))
		return crashLoop && d != nil && d.Status == metav1.ConditionTrue && d.Reason == kafkasubv1alpha1.ReasonHandlerNotRegistered && d.Message == want &&
			r != nil && r.Status == metav1.ConditionFalse, strings.Join(seen, "; "), nil
	})
	t.Logf("kubectl describe ksub %s -n %s (status and events):\n%s", name, ns, s.describe(t, &ks))
	s.deleteSide(t, kl, ns, name)
}

// describe renders a subscription's spec handler and image, its status and its events
// the way `kubectl describe ksub` does.
func (s *scenario) describe(t *testing.T, ks *kafkasubv1alpha1.KafkaSubscription) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Name:         %s\nNamespace:    %s\nAPI Version:  %s\nKind:         KafkaSubscription\n", ks.Name, ks.Namespace, kafkasubv1alpha1.GroupVersion)
	image := ks.Spec.Template.Image
	fmt.Fprintf(&b, "Spec:\n  Handler:  %s\n", ks.Spec.Handler)
	if image != "" {
		fmt.Fprintf(&b, "  Template:\n    Image:  %s\n", image)
	}
	b.WriteString("Status:\n  Conditions:\n")
	for _, c := range ks.Status.Conditions {
		fmt.Fprintf(&b, "    Last Transition Time:  %s\n    Message:               %s\n    Observed Generation:   %d\n    Reason:                %s\n    Status:                %s\n    Type:                  %s\n",
			c.LastTransitionTime.UTC().Format(time.RFC3339), c.Message, c.ObservedGeneration, c.Reason, c.Status, c.Type)
	}
	fmt.Fprintf(&b, "  Consumer Group:       %s\n  Deployment Name:      %s\n  Observed Generation:  %d\n  Ready Replicas:       %d\n  Replicas:             %d\n",
		ks.Status.ConsumerGroup, ks.Status.DeploymentName, ks.Status.ObservedGeneration, ks.Status.ReadyReplicas, ks.Status.Replicas)
	var events eventsv1.EventList
	if err := s.cp.client.List(s.ctx, &events, client.InNamespace(ks.Namespace)); err != nil {
		t.Logf("list events: %v", err)
	}
	sort.Slice(events.Items, func(i, j int) bool { return events.Items[i].EventTime.Before(&events.Items[j].EventTime) })
	b.WriteString("Events:\n  Type     Reason                Age   From               Message\n  ----     ------                ----  ----               -------\n")
	for _, e := range events.Items {
		if e.Regarding.Kind != "KafkaSubscription" || e.Regarding.Name != ks.Name {
			continue
		}
		fmt.Fprintf(&b, "  %-8s %-21s %-5s %-18s %s\n", e.Type, e.Reason, time.Since(e.EventTime.Time).Round(time.Second), e.ReportingController, e.Note)
	}
	return strings.TrimRight(b.String(), "\n")
}

// deleteSide deletes a side-by-side subscription and waits until its consumers are gone.
func (s *scenario) deleteSide(t *testing.T, kl *kubelet, ns, name string) {
	ks := &kafkasubv1alpha1.KafkaSubscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := s.cp.client.Delete(s.ctx, ks); err != nil {
		t.Fatal(err)
	}
	s.waitWith(t, kl, fmt.Sprintf("the subscription %s and its consumers gone", name), 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		err := s.cp.client.Get(ctx, client.ObjectKeyFromObject(ks), ks)
		if err != nil && !apierrors.IsNotFound(err) {
			return false, "", err
		}
		n := kl.processes()
		return apierrors.IsNotFound(err) && n == 0, fmt.Sprintf("subscription: %v, %d consumer processes", err, n), nil
	})
	if err := kl.check(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
