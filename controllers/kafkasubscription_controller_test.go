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
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// Secret values that must never appear outside their Secrets.
const (
	dsnValue      = "postgres://shop:db-pa55word-never-shown@postgres.shop:5432/shop"
	saslPassword  = "sasl-pa55word-never-shown"
	sentryDSN     = "https://sentry-key-never-shown@sentry.example/1"
	tlsKeyContent = "-----BEGIN PRIVATE KEY-----never-shown"
)

var _ = Describe("KafkaSubscription controller", func() {
	var (
		ctx context.Context
		ns  string
	)

	BeforeEach(func() {
		ctx = context.Background()
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ksub-"}}
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		ns = n.Name
	})

	newSubscription := func(name string) *kafkasubv1alpha1.KafkaSubscription {
		k := testSubscription()
		k.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: ns}
		return k
	}
	createSecret := func(name string, data map[string]string) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
	}
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	getDeployment := func(g Gomega, name string) *appsv1.Deployment {
		d := &appsv1.Deployment{}
		g.Expect(k8sClient.Get(ctx, key(ChildName(name)), d)).To(Succeed())
		return d
	}
	getSubscription := func(g Gomega, name string) *kafkasubv1alpha1.KafkaSubscription {
		k := &kafkasubv1alpha1.KafkaSubscription{}
		g.Expect(k8sClient.Get(ctx, key(name), k)).To(Succeed())
		return k
	}
	condition := func(g Gomega, name, typ string) *metav1.Condition {
		k := getSubscription(g, name)
		c := meta.FindStatusCondition(k.Status.Conditions, typ)
		g.Expect(c).NotTo(BeNil(), "condition %s of %s", typ, name)
		return c
	}
	// markAvailable plays the Deployment controller: every desired pod updated and available.
	setDeploymentStatus := func(name string, ready int32) {
		Eventually(func(g Gomega) {
			d := getDeployment(g, name)
			want := *d.Spec.Replicas
			d.Status = appsv1.DeploymentStatus{
				ObservedGeneration: d.Generation,
				Replicas:           want,
				UpdatedReplicas:    want,
				ReadyReplicas:      ready,
				AvailableReplicas:  ready,
			}
			g.Expect(k8sClient.Status().Update(ctx, d)).To(Succeed())
		}).Should(Succeed())
	}
	events := func(g Gomega, name string) map[string]string {
		list := &eventsv1.EventList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		byReason := map[string]string{}
		for _, e := range list.Items {
			if e.Regarding.Kind == "KafkaSubscription" && e.Regarding.Name == name {
				byReason[e.Reason] = e.Note
			}
		}
		return byReason
	}

	It("renders every child with owner references, the restricted security context, probes, and Secrets only as references", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		createSecret("kafka-user", map[string]string{"username": "shop", "password": saslPassword})
		createSecret("sentry", map[string]string{"dsn": sentryDSN})
		createSecret("kafka-tls", map[string]string{"ca.crt": "ca", "user.crt": "crt", "user.key": tlsKeyContent})
		k := newSubscription("inventory")
		withAllSecrets(k)
		Expect(k8sClient.Create(ctx, k)).To(Succeed())

		var dep *appsv1.Deployment
		Eventually(func(g Gomega) { dep = getDeployment(g, "inventory") }).Should(Succeed())
		cm := &corev1.ConfigMap{}
		svc := &corev1.Service{}
		pdb := &policyv1.PodDisruptionBudget{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), cm)).To(Succeed())
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), svc)).To(Succeed())
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), pdb)).To(Succeed())
		}).Should(Succeed())

		By("owning every child as its controller")
		for _, obj := range []client.Object{cm, dep, svc, pdb} {
			Expect(metav1.IsControlledBy(obj, k)).To(BeTrue(), "%T %s is not controlled by the subscription", obj, obj.GetName())
			Expect(obj.GetLabels()).To(HaveKeyWithValue(LabelManagedBy, ManagedBy))
			Expect(obj.GetManagedFields()).To(ContainElement(HaveField("Manager", FieldManager)))
		}

		By("rendering the consumer configuration the consumer parses")
		cfg, err := consumer.Parse([]byte(cm.Data[consumer.ConfigFileName]))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Kafka.Topic).To(Equal("inventory_management_product_updates"))
		Expect(cfg.Kafka.ConsumerGroup).To(Equal(ns + ".inventory"))
		Expect(cfg.Kafka.TLS.KeyFile).To(Equal(TLSDir + "/" + TLSKeyFile))

		By("running the consumer under the restricted Pod Security Standard")
		pod := dep.Spec.Template.Spec
		Expect(*dep.Spec.Replicas).To(Equal(int32(2)))
		Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
		Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
		c := pod.Containers[0]
		Expect(c.Image).To(Equal(testConsumerImage))
		Expect(c.Command).To(Equal([]string{"/kafkasub"}))
		Expect(c.Args).To(Equal([]string{"consumer", "--config", ConfigFile}))
		Expect(*c.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
		Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
		Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
		Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
		Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
		Expect(dep.Spec.Template.Annotations).To(HaveKey(AnnotationConfigHash))
		Expect(c.VolumeMounts).To(ContainElement(HaveField("MountPath", "/tmp")))

		By("mounting every secret as a file of one projected volume, never as a variable")
		for _, e := range c.Env {
			Expect(e.ValueFrom).To(BeNil(), "env %s comes from a reference", e.Name)
		}
		var secretNames []string
		for _, v := range pod.Volumes {
			if v.Projected != nil {
				for _, src := range v.Projected.Sources {
					secretNames = append(secretNames, src.Secret.Name)
				}
			}
		}
		Expect(secretNames).To(ConsistOf("shop-db", "kafka-tls", "kafka-user", "sentry"))
		Expect(svc.Spec.ClusterIP).To(Equal(corev1.ClusterIPNone), "the metrics Service takes a cluster IP")

		By("reporting Ready once the Deployment is available, with no secret value anywhere")
		setDeploymentStatus("inventory", 2)
		Eventually(func(g Gomega) {
			g.Expect(condition(g, "inventory", kafkasubv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(events(g, "inventory")).To(HaveKey(EventCreated))
		}).Should(Succeed())
		k = getSubscription(Default, "inventory")
		var everything []any
		for _, obj := range []client.Object{k, cm, getDeployment(Default, "inventory"), svc, pdb} {
			everything = append(everything, obj)
		}
		evs := &eventsv1.EventList{}
		Expect(k8sClient.List(ctx, evs, client.InNamespace(ns))).To(Succeed())
		everything = append(everything, evs)
		raw, err := json.Marshal(everything)
		Expect(err).NotTo(HaveOccurred())
		for _, secret := range []string{dsnValue, saslPassword, sentryDSN, tlsKeyContent} {
			Expect(string(raw)).NotTo(ContainSubstring(secret))
		}
	})

	It("follows the Deployment's availability in Ready and reports replicas", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		Expect(k8sClient.Create(ctx, newSubscription("inventory"))).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, "inventory", kafkasubv1alpha1.ConditionReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonRolloutInProgress))
			g.Expect(condition(g, "inventory", kafkasubv1alpha1.ConditionProgressing).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		setDeploymentStatus("inventory", 2)
		Eventually(func(g Gomega) {
			k := getSubscription(g, "inventory")
			c := meta.FindStatusCondition(k.Status.Conditions, kafkasubv1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonDeploymentAvailable))
			g.Expect(c.ObservedGeneration).To(Equal(k.Generation))
			g.Expect(k.Status.ObservedGeneration).To(Equal(k.Generation))
			g.Expect(k.Status.Replicas).To(Equal(int32(2)))
			g.Expect(k.Status.ReadyReplicas).To(Equal(int32(2)))
			g.Expect(k.Status.DeploymentName).To(Equal("inventory-consumer"))
			g.Expect(k.Status.ConsumerGroup).To(Equal(ns + ".inventory"))
			g.Expect(condition(g, "inventory", kafkasubv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())

		setDeploymentStatus("inventory", 1)
		Eventually(func(g Gomega) {
			c := condition(g, "inventory", kafkasubv1alpha1.ConditionReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonDeploymentUnavailable))
			g.Expect(c.Message).To(ContainSubstring("1 of 2"))
		}).Should(Succeed())
	})

	It("reads well in kubectl get ksub: topic, dead-letter topic, ready, replicas, lag, age", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		Expect(k8sClient.Create(ctx, newSubscription("inventory"))).To(Succeed())
		By("showing 0, not nothing, in READY-REPLICAS (-o wide) before any pod is ready")
		Eventually(func(g Gomega) {
			g.Expect(getSubscription(g, "inventory").Status.Conditions).NotTo(BeEmpty())
			table := getTable(ns, "kafkasubscriptions")
			g.Expect(table.Rows).To(HaveLen(1))
			for i, c := range table.ColumnDefinitions {
				if c.Name == "Ready-Replicas" || c.Name == "Replicas" {
					g.Expect(table.Rows[0].Cells[i]).To(Equal(float64(0)), "column %s", c.Name)
				}
			}
		}).Should(Succeed())
		setDeploymentStatus("inventory", 2)
		Eventually(func(g Gomega) {
			g.Expect(condition(g, "inventory", kafkasubv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		// The API server renders the printer columns, as kubectl asks it to.
		table := getTable(ns, "kafkasubscriptions")
		var columns []string
		for _, c := range table.ColumnDefinitions {
			if c.Priority == 0 {
				columns = append(columns, strings.ToUpper(c.Name))
			}
		}
		Expect(columns).To(Equal([]string{"NAME", "TOPIC", "DEAD-LETTER", "READY", "REPLICAS", "LAG", "AGE"}))
		Expect(table.Rows).To(HaveLen(1))
		Expect(table.Rows[0].Cells[:5]).To(Equal([]any{
			"inventory", "inventory_management_product_updates", "inventory_management_product_updates.dlq", "True", float64(2),
		}))
	})

	// createPod plays the ReplicaSet controller: a consumer pod of the subscription.
	createPod := func(name string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-consumer-abc12", Namespace: ns, Labels: StandardLabels(newSubscription(name))},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Image: testConsumerImage}}},
		}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		return p
	}
	// setContainerStatus plays the kubelet: the consumer container's status.
	setContainerStatus := func(p *corev1.Pod, cs corev1.ContainerStatus) {
		cs.Name, cs.Image = ContainerName, testConsumerImage
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			p.Status.Phase = corev1.PodPending
			if cs.State.Running != nil {
				p.Status.Phase = corev1.PodRunning
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
			g.Expect(k8sClient.Status().Update(ctx, p)).To(Succeed())
		}).Should(Succeed())
	}
	// setContainerState plays the kubelet: the consumer container's state.
	setContainerState := func(p *corev1.Pod, state corev1.ContainerState) {
		setContainerStatus(p, corev1.ContainerStatus{State: state})
	}
	degraded := func(g Gomega, name string) *metav1.Condition {
		return condition(g, name, kafkasubv1alpha1.ConditionDegraded)
	}

	It("reports a Secret the kubelet cannot find (CreateContainerConfigError) as Degraded SecretNotFound, and clears when the pod starts", func() {
		Expect(k8sClient.Create(ctx, newSubscription("inventory"))).To(Succeed())
		Eventually(func(g Gomega) {
			getDeployment(g, "inventory")
			g.Expect(degraded(g, "inventory").Reason).To(Equal(kafkasubv1alpha1.ReasonAsExpected))
		}).Should(Succeed())

		p := createPod("inventory")
		setContainerState(p, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CreateContainerConfigError", Message: `secret "shop-db" not found`,
		}})
		Eventually(func(g Gomega) {
			c := degraded(g, "inventory")
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonSecretNotFound))
			g.Expect(c.Message).To(Equal(`Secret "shop-db" (key "dsn", for spec.database.dsnSecretRef) not found`))
			g.Expect(events(g, "inventory")).To(HaveKeyWithValue(EventSecretNotFound, ContainSubstring("shop-db")))
		}).Should(Succeed())

		By("naming the key when the Secret exists without it")
		setContainerState(p, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CreateContainerConfigError", Message: "couldn't find key dsn in Secret " + ns + "/shop-db",
		}})
		Eventually(func(g Gomega) {
			g.Expect(degraded(g, "inventory").Message).To(Equal(`Secret "shop-db" has no key "dsn" (for spec.database.dsnSecretRef)`))
		}).Should(Succeed())

		By("clearing once the container runs")
		setContainerState(p, corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}})
		Eventually(func(g Gomega) {
			c := degraded(g, "inventory")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonAsExpected))
			g.Expect(events(g, "inventory")).To(HaveKey(EventSecretsFound))
		}).Should(Succeed())
	})

	It("reports a Secret key the kubelet cannot mount (FailedMount) as Degraded SecretNotFound while the pod has not started", func() {
		k := newSubscription("inventory")
		withAllSecrets(k)
		Expect(k8sClient.Create(ctx, k)).To(Succeed())
		Eventually(func(g Gomega) { getDeployment(g, "inventory") }).Should(Succeed())
		p := createPod("inventory")
		setContainerState(p, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}})
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: p.Name + ".failedmount", Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.Name, UID: p.UID, APIVersion: "v1"},
			Reason:         "FailedMount",
			Type:           corev1.EventTypeWarning,
			Message:        `MountVolume.SetUp failed for volume "secrets" : [secret "kafka-user" not found, references non-existent secret key: user.key]`,
			Source:         corev1.EventSource{Component: "kubelet"},
		}
		Expect(k8sClient.Create(ctx, ev)).To(Succeed())
		Eventually(func(g Gomega) {
			c := degraded(g, "inventory")
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonSecretNotFound))
			g.Expect(c.Message).To(Equal(`Secret "kafka-tls" has no key "user.key" (for spec.kafka.tls.secretRef); ` +
				`Secret "kafka-user" (keys "password", "username", for spec.kafka.sasl.secretRef) not found`))
		}).Should(Succeed())

		By("ignoring the event once the pod has started (the mount succeeded)")
		setContainerState(p, corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}})
		Eventually(func(g Gomega) {
			g.Expect(degraded(g, "inventory").Reason).To(Equal(kafkasubv1alpha1.ReasonAsExpected))
		}).Should(Succeed())
	})

	It("reports a consumer whose image lacks its handler as Degraded HandlerNotRegistered with its termination message, a crash loop as ConsumerCrashing, and clears when it is ready", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		k := newSubscription("inventory")
		k.Spec.Handler = "orders.status"
		k.Spec.Replicas = ptr.To[int32](1)
		Expect(k8sClient.Create(ctx, k)).To(Succeed())
		Eventually(func(g Gomega) {
			getDeployment(g, "inventory")
			g.Expect(degraded(g, "inventory").Reason).To(Equal(kafkasubv1alpha1.ReasonAsExpected))
		}).Should(Succeed())

		// What `kafkasub consumer` writes to /dev/termination-log, and the kubelet copies
		// into the container's status once it exited and waits to be restarted.
		const notRegistered = `HandlerNotRegistered: handler "orders.status" is not registered in this consumer image (registered handlers: inventory.product-updates)`
		exited := func(msg string) *corev1.ContainerStateTerminated {
			return &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: msg, StartedAt: metav1.Now(), FinishedAt: metav1.Now()}
		}
		crashLoop := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s restarting failed container"}}
		p := createPod("inventory")
		setContainerStatus(p, corev1.ContainerStatus{State: crashLoop, LastTerminationState: corev1.ContainerState{Terminated: exited(notRegistered)}, RestartCount: 2})
		Eventually(func(g Gomega) {
			c := degraded(g, "inventory")
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonHandlerNotRegistered))
			g.Expect(c.Message).To(Equal(notRegistered))
			g.Expect(events(g, "inventory")).To(HaveKeyWithValue(EventHandlerNotRegistered, "Consumer pod "+p.Name+": "+notRegistered))
		}).Should(Succeed())

		By("keeping it while the container runs again")
		setContainerStatus(p, corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
			LastTerminationState: corev1.ContainerState{Terminated: exited(notRegistered)}, RestartCount: 3})
		Consistently(func(g Gomega) {
			g.Expect(degraded(g, "inventory").Reason).To(Equal(kafkasubv1alpha1.ReasonHandlerNotRegistered))
		}, time.Second).Should(Succeed())

		By("reporting another error as ConsumerCrashing with its message")
		const failed = "ConsumerFailed: kafka: client has run out of available brokers to talk to"
		setContainerStatus(p, corev1.ContainerStatus{State: corev1.ContainerState{Terminated: exited(failed)}, RestartCount: 3})
		Eventually(func(g Gomega) {
			c := degraded(g, "inventory")
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonConsumerCrashing))
			g.Expect(c.Message).To(Equal(failed))
			g.Expect(events(g, "inventory")).To(HaveKeyWithValue(EventConsumerCrashing, ContainSubstring(failed)))
		}).Should(Succeed())

		By("clearing once the container runs again and the Deployment is available")
		setContainerStatus(p, corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
			LastTerminationState: corev1.ContainerState{Terminated: exited(failed)}, RestartCount: 4, Ready: true})
		Consistently(func(g Gomega) {
			g.Expect(degraded(g, "inventory").Reason).To(Equal(kafkasubv1alpha1.ReasonConsumerCrashing))
		}, time.Second).Should(Succeed())
		setDeploymentStatus("inventory", 1)
		Eventually(func(g Gomega) {
			c := degraded(g, "inventory")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonAsExpected))
		}).Should(Succeed())
	})

	It("rolls the pods when the spec changes: the ConfigMap and the config hash follow", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		Expect(k8sClient.Create(ctx, newSubscription("inventory"))).To(Succeed())
		var oldHash string
		Eventually(func(g Gomega) {
			oldHash = getDeployment(g, "inventory").Spec.Template.Annotations[AnnotationConfigHash]
			g.Expect(oldHash).NotTo(BeEmpty())
		}).Should(Succeed())

		k := getSubscription(Default, "inventory")
		patch := client.MergeFrom(k.DeepCopy())
		k.Spec.Kafka.Topic = "inventory_v2"
		k.Spec.Retry.MaxAttempts = 5
		Expect(k8sClient.Patch(ctx, k, patch)).To(Succeed())

		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), cm)).To(Succeed())
			cfg, err := consumer.Parse([]byte(cm.Data[consumer.ConfigFileName]))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cfg.Kafka.Topic).To(Equal("inventory_v2"))
			g.Expect(cfg.Retry.MaxAttempts).To(Equal(5))
			d := getDeployment(g, "inventory")
			g.Expect(d.Spec.Template.Annotations[AnnotationConfigHash]).NotTo(Equal(oldHash))
			g.Expect(events(g, "inventory")).To(HaveKey(EventUpdated))
		}).Should(Succeed())
	})

	It("replaces a metrics Service that has a cluster IP by a headless one", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		k := newSubscription("inventory")
		Expect(k8sClient.Create(ctx, k)).To(Succeed())
		var old *corev1.Service
		Eventually(func(g Gomega) {
			old = &corev1.Service{}
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), old)).To(Succeed())
		}).Should(Succeed())
		// What an older operator left: the same Service with a cluster IP.
		Expect(k8sClient.Delete(ctx, old)).To(Succeed())
		withIP := old.DeepCopy()
		withIP.ResourceVersion, withIP.UID = "", ""
		withIP.Spec.ClusterIP, withIP.Spec.ClusterIPs = "", nil
		delete(withIP.Annotations, AnnotationAppliedHash)
		Eventually(func(g Gomega) {
			err := k8sClient.Create(ctx, withIP.DeepCopy())
			g.Expect(err == nil || apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
		}).Should(Succeed())

		Eventually(func(g Gomega) {
			s := &corev1.Service{}
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), s)).To(Succeed())
			g.Expect(s.Spec.ClusterIP).To(Equal(corev1.ClusterIPNone))
		}).Should(Succeed())
	})

	It("scales to zero when suspended, with reason Suspended, and drops the PodDisruptionBudget", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		Expect(k8sClient.Create(ctx, newSubscription("inventory"))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), &policyv1.PodDisruptionBudget{})).To(Succeed())
		}).Should(Succeed())

		k := getSubscription(Default, "inventory")
		patch := client.MergeFrom(k.DeepCopy())
		k.Spec.Suspend = true
		Expect(k8sClient.Patch(ctx, k, patch)).To(Succeed())

		Eventually(func(g Gomega) {
			g.Expect(*getDeployment(g, "inventory").Spec.Replicas).To(Equal(int32(0)))
			c := condition(g, "inventory", kafkasubv1alpha1.ConditionReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonSuspended))
			err := k8sClient.Get(ctx, key("inventory-consumer"), &policyv1.PodDisruptionBudget{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the PodDisruptionBudget still exists: %v", err)
		}).Should(Succeed())

		By("resuming to the spec's replicas")
		k = getSubscription(Default, "inventory")
		patch = client.MergeFrom(k.DeepCopy())
		k.Spec.Suspend = false
		Expect(k8sClient.Patch(ctx, k, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(*getDeployment(g, "inventory").Spec.Replicas).To(Equal(int32(2)))
		}).Should(Succeed())
	})

	It("reverts a hand edit of the Deployment", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		Expect(k8sClient.Create(ctx, newSubscription("inventory"))).To(Succeed())
		Eventually(func(g Gomega) { getDeployment(g, "inventory") }).Should(Succeed())

		Eventually(func(g Gomega) {
			d := getDeployment(g, "inventory")
			d.Spec.Replicas = ptr.To[int32](7)
			d.Spec.Template.Spec.Containers[0].Image = "someone/else:latest"
			d.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr.To(false)
			g.Expect(k8sClient.Update(ctx, d)).To(Succeed())
		}).Should(Succeed())

		Eventually(func(g Gomega) {
			d := getDeployment(g, "inventory")
			g.Expect(*d.Spec.Replicas).To(Equal(int32(2)))
			g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal(testConsumerImage))
			g.Expect(*d.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
		}).Should(Succeed())

		By("reverting a hand edit of the configuration and the Service")
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), cm)).To(Succeed())
			cm.Data[consumer.ConfigFileName] = "handler: someone-else\n"
			g.Expect(k8sClient.Update(ctx, cm)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			s := &corev1.Service{}
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), s)).To(Succeed())
			s.Spec.Selector[LabelInstance] = "someone-else"
			g.Expect(k8sClient.Update(ctx, s)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), cm)).To(Succeed())
			g.Expect(cm.Data[consumer.ConfigFileName]).To(ContainSubstring("inventory.product-updates"))
			s := &corev1.Service{}
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), s)).To(Succeed())
			g.Expect(s.Spec.Selector).To(HaveKeyWithValue(LabelInstance, "inventory"))
		}).Should(Succeed())

		By("recreating a deleted ConfigMap")
		Expect(k8sClient.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "inventory-consumer", Namespace: ns}})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), &corev1.ConfigMap{})).To(Succeed())
		}).Should(Succeed())
	})

	It("leaves children that the garbage collector removes once the subscription is deleted", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		k := newSubscription("inventory")
		Expect(k8sClient.Create(ctx, k)).To(Succeed())
		children := []client.Object{&corev1.ConfigMap{}, &appsv1.Deployment{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{}}
		Eventually(func(g Gomega) {
			for _, c := range children {
				g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), c)).To(Succeed())
			}
		}).Should(Succeed())

		Expect(k8sClient.Delete(ctx, k)).To(Succeed())
		Eventually(func(g Gomega) {
			err := k8sClient.Get(ctx, key("inventory"), &kafkasubv1alpha1.KafkaSubscription{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}).Should(Succeed())
		// envtest runs no garbage collector: what it would delete is every object whose
		// controller owner reference points at the deleted subscription.
		for _, c := range children {
			Expect(k8sClient.Get(ctx, key("inventory-consumer"), c)).To(Succeed())
			ref := metav1.GetControllerOf(c)
			Expect(ref).NotTo(BeNil(), "%T has no controller", c)
			Expect(ref.UID).To(Equal(k.UID))
			Expect(ref.Kind).To(Equal("KafkaSubscription"))
			Expect(*ref.BlockOwnerDeletion).To(BeTrue())
		}
	})

	It("converges in at most six writes and makes no write in a reconcile that changes nothing", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		k := newSubscription("inventory")
		k.Spec.Replicas = ptr.To[int32](1)
		Expect(k8sClient.Create(ctx, k)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(getSubscription(g, "inventory").Status.ObservedGeneration).To(Equal(int64(1)))
		}).Should(Succeed())
		setDeploymentStatus("inventory", 1)
		Eventually(func(g Gomega) {
			g.Expect(condition(g, "inventory", kafkasubv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		// ConfigMap, Service, Deployment, the Created event, the status twice (created, then Ready).
		writes, what := managerWrites.in(ns)
		Expect(writes).To(BeNumerically("<=", 6), "writes to converge: %v", what)

		// An annotation changes no generation and nothing the status depends on, but it
		// triggers a reconcile.
		before := reconcileCount()
		k = getSubscription(Default, "inventory")
		patch := client.MergeFrom(k.DeepCopy())
		k.Annotations = map[string]string{"example.com/touched": "yes"}
		Expect(k8sClient.Patch(ctx, k, patch)).To(Succeed())
		rv := k.ResourceVersion
		dep := getDeployment(Default, "inventory")

		Eventually(reconcileCount).Should(BeNumerically(">", before))
		Consistently(func() int { n, _ := managerWrites.in(ns); return n }, 2*time.Second).Should(Equal(writes), "the manager wrote although nothing changed")
		after := getSubscription(Default, "inventory")
		Expect(after.ResourceVersion).To(Equal(rv), "the status was written although nothing changed")
		Expect(getDeployment(Default, "inventory").ResourceVersion).To(Equal(dep.ResourceVersion), "the Deployment was rewritten although nothing changed")
	})

	It("reports a child it cannot apply as Degraded with reason ApplyFailed", func() {
		createSecret("shop-db", map[string]string{"dsn": dsnValue})
		// A Service of the same name that another controller owns: a second controller
		// owner reference is invalid, so the apply fails.
		other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other-owner", Namespace: ns}}
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "inventory-consumer", Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "ConfigMap", Name: other.Name, UID: other.UID, Controller: ptr.To(true),
			}}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}
		Expect(k8sClient.Create(ctx, svc)).To(Succeed())
		Expect(k8sClient.Create(ctx, newSubscription("inventory"))).To(Succeed())

		Eventually(func(g Gomega) {
			c := condition(g, "inventory", kafkasubv1alpha1.ConditionDegraded)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonApplyFailed))
			g.Expect(c.Message).To(ContainSubstring("Service inventory-consumer"))
			g.Expect(events(g, "inventory")).To(HaveKey(EventApplyFailed))
		}).Should(Succeed())

		By("recovering once the conflicting Service is gone")
		Expect(k8sClient.Delete(ctx, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, "inventory", kafkasubv1alpha1.ConditionDegraded)
			g.Expect(c.Reason).To(Equal(kafkasubv1alpha1.ReasonAsExpected))
			s := &corev1.Service{}
			g.Expect(k8sClient.Get(ctx, key("inventory-consumer"), s)).To(Succeed())
			g.Expect(metav1.GetControllerOf(s).Kind).To(Equal("KafkaSubscription"))
		}).WithTimeout(3 * time.Minute).Should(Succeed()) // the failed reconcile is retried with exponential backoff
	})
})

// getTable lists resource in namespace ns as the API server's Table, the way kubectl get does.
func getTable(ns, resource string) *metav1.Table {
	httpClient, err := rest.HTTPClientFor(cfg)
	Expect(err).NotTo(HaveOccurred())
	url := fmt.Sprintf("%s/apis/%s/namespaces/%s/%s", strings.TrimSuffix(cfg.Host, "/"), kafkasubv1alpha1.GroupVersion, ns, resource)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	table := &metav1.Table{}
	Expect(json.NewDecoder(resp.Body).Decode(table)).To(Succeed())
	return table
}

// reconcileCount is the number of successful reconciles of the controller so far, from
// controller-runtime's own metrics.
func reconcileCount() float64 {
	families, err := crmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["controller"] == ControllerName && labels["result"] == "success" {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
