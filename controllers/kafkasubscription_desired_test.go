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
	"path"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// testSubscription is the inventory subscription of the samples, with every optional
// Secret reference left out.
func testSubscription() *kafkasubv1alpha1.KafkaSubscription {
	return &kafkasubv1alpha1.KafkaSubscription{
		ObjectMeta: metav1.ObjectMeta{Name: "inventory", Namespace: "shop", UID: "1234", Generation: 1},
		Spec: kafkasubv1alpha1.KafkaSubscriptionSpec{
			Handler: inventory.HandlerName,
			Kafka: kafkasubv1alpha1.KafkaSource{
				BootstrapServers: []kafkasubv1alpha1.BootstrapServer{"kafka.kafka:9092"},
				Topic:            "inventory_management_product_updates",
				InitialOffset:    kafkasubv1alpha1.InitialOffsetEarliest,
			},
			DeadLetter: kafkasubv1alpha1.DeadLetter{Topic: "inventory_management_product_updates.dlq"},
			Retry: kafkasubv1alpha1.RetryPolicy{
				InitialBackoff: &metav1.Duration{Duration: time.Second},
				MaxBackoff:     &metav1.Duration{Duration: time.Minute},
			},
			Database: kafkasubv1alpha1.Database{
				Driver:       kafkasubv1alpha1.DatabaseDriverPostgres,
				DSNSecretRef: kafkasubv1alpha1.SecretKeyReference{Name: "shop-db", Key: "dsn"},
			},
			Replicas: ptr.To[int32](2),
		},
	}
}

func withAllSecrets(k *kafkasubv1alpha1.KafkaSubscription) {
	k.Spec.Kafka.TLS = &kafkasubv1alpha1.KafkaTLS{
		SecretRef: &kafkasubv1alpha1.SecretReference{Name: "kafka-tls"},
		CertKey:   "user.crt", KeyKey: "user.key",
	}
	k.Spec.Kafka.SASL = &kafkasubv1alpha1.KafkaSASL{
		Mechanism: kafkasubv1alpha1.SASLMechanismSCRAMSHA512,
		SecretRef: kafkasubv1alpha1.SecretReference{Name: "kafka-user"},
	}
	k.Spec.ErrorReporting = &kafkasubv1alpha1.ErrorReporting{Sentry: &kafkasubv1alpha1.SentryReporting{
		DSNSecretRef: kafkasubv1alpha1.SecretKeyReference{Name: "sentry", Key: "dsn"},
	}}
}

func mustBuild(t *testing.T, k *kafkasubv1alpha1.KafkaSubscription) *Desired {
	t.Helper()
	d, err := BuildDesired(k, BuildOptions{ConsumerImage: "registry.example/kafkasub:1.0"})
	if err != nil {
		t.Fatalf("BuildDesired: %v", err)
	}
	return d
}

func TestConsumerConfig(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*kafkasubv1alpha1.KafkaSubscription)
		check  func(*testing.T, *consumer.Config)
	}{
		{
			name:   "The consumer group defaults to namespace.name",
			modify: func(*kafkasubv1alpha1.KafkaSubscription) {},
			check: func(t *testing.T, c *consumer.Config) {
				if c.Kafka.ConsumerGroup != "shop.inventory" {
					t.Errorf("consumer group = %q, want shop.inventory", c.Kafka.ConsumerGroup)
				}
			},
		},
		{
			name: "An explicit consumer group is kept",
			modify: func(k *kafkasubv1alpha1.KafkaSubscription) {
				k.Spec.Kafka.ConsumerGroup = "shop-inventory"
			},
			check: func(t *testing.T, c *consumer.Config) {
				if c.Kafka.ConsumerGroup != "shop-inventory" {
					t.Errorf("consumer group = %q, want shop-inventory", c.Kafka.ConsumerGroup)
				}
			},
		},
		{
			name: "Topics, handler, retry and database are copied from the spec",
			modify: func(k *kafkasubv1alpha1.KafkaSubscription) {
				k.Spec.Retry.MaxAttempts = 7
				k.Spec.Database.Migrate = true
				k.Spec.Database.OffsetTable = "shop_offsets"
				k.Spec.Database.MaxConnections = 4
			},
			check: func(t *testing.T, c *consumer.Config) {
				if c.Handler != inventory.HandlerName || c.Kafka.Topic != "inventory_management_product_updates" ||
					c.DeadLetter.Topic != "inventory_management_product_updates.dlq" || c.Subscription != "shop/inventory" {
					t.Errorf("unexpected identity: %+v", c)
				}
				if c.Retry.MaxAttempts != 7 || c.Retry.InitialBackoff.Duration != time.Second || c.Retry.MaxBackoff.Duration != time.Minute {
					t.Errorf("retry = %+v", c.Retry)
				}
				if c.Database.Driver != "postgres" || !c.Database.Migrate || c.Database.OffsetTable != "shop_offsets" || c.Database.MaxConnections != 4 {
					t.Errorf("database = %+v", c.Database)
				}
			},
		},
		{
			name:   "TLS with client certificate points at the mounted files",
			modify: withAllSecrets,
			check: func(t *testing.T, c *consumer.Config) {
				want := &consumer.TLSConfig{CAFile: "/etc/kafkasub/secrets/tls/ca.crt", CertFile: "/etc/kafkasub/secrets/tls/tls.crt", KeyFile: "/etc/kafkasub/secrets/tls/tls.key"}
				if !reflect.DeepEqual(c.Kafka.TLS, want) {
					t.Errorf("tls = %+v, want %+v", c.Kafka.TLS, want)
				}
				if c.Kafka.SASL == nil || c.Kafka.SASL.Mechanism != "SCRAM-SHA-512" {
					t.Errorf("sasl = %+v", c.Kafka.SASL)
				}
				if !c.SentryEnabled {
					t.Error("sentry is not enabled")
				}
			},
		},
		{
			name:   "TLS without a Secret uses the system roots",
			modify: func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.Kafka.TLS = &kafkasubv1alpha1.KafkaTLS{} },
			check: func(t *testing.T, c *consumer.Config) {
				if c.Kafka.TLS == nil || *c.Kafka.TLS != (consumer.TLSConfig{}) {
					t.Errorf("tls = %+v, want an empty TLS section", c.Kafka.TLS)
				}
			},
		},
		{
			name: "deadLetter.create and the error policy reach the consumer as they are",
			modify: func(k *kafkasubv1alpha1.KafkaSubscription) {
				k.Spec.DeadLetter.Create = true
				k.Spec.Retry.MaxAttempts = 5
				k.Spec.ErrorPolicy = kafkasubv1alpha1.ErrorPolicy{
					"UnexpectedAttributes": kafkasubv1alpha1.ErrorActionSkip,
					"DatabaseError":        kafkasubv1alpha1.ErrorActionRetry,
					"RetriesExhausted":     kafkasubv1alpha1.ErrorActionDeadLetter,
				}
			},
			check: func(t *testing.T, c *consumer.Config) {
				if !c.DeadLetter.Create {
					t.Error("deadLetter.create is false")
				}
				want := map[consumer.ErrorClass]consumer.ErrorAction{
					consumer.ClassUnexpectedAttributes: consumer.ActionSkip,
					consumer.ClassDatabaseError:        consumer.ActionRetry,
					consumer.ClassRetriesExhausted:     consumer.ActionDeadLetter,
				}
				if !reflect.DeepEqual(c.ErrorPolicy, want) {
					t.Errorf("errorPolicy = %v, want %v", c.ErrorPolicy, want)
				}
			},
		},
		{
			name:   "Without an error policy or deadLetter.create the consumer gets neither",
			modify: func(*kafkasubv1alpha1.KafkaSubscription) {},
			check: func(t *testing.T, c *consumer.Config) {
				if c.DeadLetter.Create || c.ErrorPolicy != nil {
					t.Errorf("deadLetter = %+v, errorPolicy = %v, want no create and no policy", c.DeadLetter, c.ErrorPolicy)
				}
			},
		},
		{
			name:   "Defaults fill what the spec leaves out",
			modify: func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.Retry = kafkasubv1alpha1.RetryPolicy{} },
			check: func(t *testing.T, c *consumer.Config) {
				if c.Retry.InitialBackoff.Duration <= 0 || c.HealthAddr != consumer.DefaultHealthAddr || c.MetricsAddr != consumer.DefaultMetricsAddr {
					t.Errorf("defaults missing: %+v", c)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := testSubscription()
			tc.modify(k)
			c, err := ConsumerConfig(k)
			if err != nil {
				t.Fatalf("ConsumerConfig: %v", err)
			}
			tc.check(t, c)
			// What the operator renders, the consumer parses back strictly.
			data, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := consumer.Parse(data)
			if err != nil {
				t.Fatalf("the consumer cannot parse the rendered config: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(back, c) {
				t.Errorf("round trip changed the config:\n got %+v\nwant %+v", back, c)
			}
		})
	}
}

func TestConsumerConfigRejectsWhatTheConsumerWould(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*kafkasubv1alpha1.KafkaSubscription)
		want   string
	}{
		{"A dead-letter topic equal to the source topic is rejected", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.DeadLetter.Topic = k.Spec.Kafka.Topic
		}, "deadLetter.topic"},
		{"A bootstrap server without a port is rejected", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.Kafka.BootstrapServers = []kafkasubv1alpha1.BootstrapServer{"kafka"}
		}, "kafka.bootstrapServers[0]"},
		{"A max backoff below the initial backoff is rejected", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.Retry.MaxBackoff = &metav1.Duration{Duration: time.Millisecond}
		}, "retry.maxBackoff"},
		{"An unknown driver is rejected", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.Database.Driver = "oracle"
		}, "database.driver"},
		{"Retrying a class with max attempts 0 is rejected", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.ErrorPolicy = kafkasubv1alpha1.ErrorPolicy{"ValidationFailed": kafkasubv1alpha1.ErrorActionRetry}
		}, "errorPolicy.ValidationFailed"},
		{"A policy for a transient class is rejected", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.ErrorPolicy = kafkasubv1alpha1.ErrorPolicy{"Unclassified": kafkasubv1alpha1.ErrorActionSkip}
		}, "errorPolicy.Unclassified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := testSubscription()
			tc.modify(k)
			_, err := BuildDesired(k, BuildOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestBuildDesiredDeployment(t *testing.T) {
	k := testSubscription()
	withAllSecrets(k)
	k.Spec.Template = kafkasubv1alpha1.ConsumerTemplate{
		Labels:      map[string]string{"team": "shop", LabelInstance: "overridden"},
		Annotations: map[string]string{"example.com/owner": "shop"},
		Env:         []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}},
	}
	d := mustBuild(t, k)
	dep := d.Deployment

	if dep.Name != "inventory-consumer" || dep.Namespace != "shop" {
		t.Errorf("deployment %s/%s, want shop/inventory-consumer", dep.Namespace, dep.Name)
	}
	for _, obj := range d.Objects() {
		refs := obj.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != "1234" || refs[0].Kind != "KafkaSubscription" || !ptr.Deref(refs[0].Controller, false) || !ptr.Deref(refs[0].BlockOwnerDeletion, false) {
			t.Errorf("%T %s: owner references %+v", obj, obj.GetName(), refs)
		}
		if obj.GetLabels()[LabelManagedBy] != ManagedBy || obj.GetLabels()[LabelInstance] != "inventory" {
			t.Errorf("%T %s: labels %v", obj, obj.GetName(), obj.GetLabels())
		}
	}
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *dep.Spec.Replicas)
	}
	pod := dep.Spec.Template
	if pod.Labels[LabelInstance] != "inventory" || pod.Labels["team"] != "shop" {
		t.Errorf("pod labels = %v: operator labels must win, user labels must stay", pod.Labels)
	}
	if pod.Annotations[AnnotationConfigHash] != d.ConfigHash || pod.Annotations["example.com/owner"] != "shop" {
		t.Errorf("pod annotations = %v", pod.Annotations)
	}
	if !reflect.DeepEqual(dep.Spec.Selector.MatchLabels, SelectorLabels(k)) {
		t.Errorf("selector = %v", dep.Spec.Selector.MatchLabels)
	}

	ps := pod.Spec
	if !*ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || *ps.AutomountServiceAccountToken {
		t.Errorf("pod security context = %+v, automount = %v", ps.SecurityContext, *ps.AutomountServiceAccountToken)
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	if *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !*sc.RunAsNonRoot || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context = %+v", sc)
	}
	if c.Image != "registry.example/kafkasub:1.0" {
		t.Errorf("image = %q, want the manager's consumer image", c.Image)
	}
	if got := append(c.Command, c.Args...); !reflect.DeepEqual(got, []string{"/kafkasub", "consumer", "--config", "/etc/kafkasub/config/config.yaml"}) {
		t.Errorf("command = %v", got)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Port.StrVal != HealthPortName {
		t.Errorf("probes = %+v / %+v", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports[HealthPortName] != 8081 || ports[MetricsPortName] != 8080 {
		t.Errorf("ports = %v", ports)
	}

	if !reflect.DeepEqual(c.Env, []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}}) {
		t.Errorf("env = %+v, want only the template's: secrets are files, not variables", c.Env)
	}

	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts[configVolume] != ConfigDir || mounts[secretsVolume] != SecretsDir || mounts[tmpVolume] != "/tmp" {
		t.Errorf("mounts = %v", mounts)
	}
	var secrets *corev1.ProjectedVolumeSource
	for _, v := range ps.Volumes {
		if v.Name == secretsVolume {
			secrets = v.Projected
		}
	}
	if secrets == nil {
		t.Fatalf("no projected volume %q in %+v", secretsVolume, ps.Volumes)
	}
	// Every referenced key becomes the file the consumer configuration names.
	files := map[string]string{}
	for _, src := range secrets.Sources {
		if src.Secret == nil {
			t.Fatalf("a source that is not a Secret: %+v", src)
		}
		for _, it := range src.Secret.Items {
			files[path.Join(SecretsDir, it.Path)] = src.Secret.Name + "/" + it.Key
		}
	}
	cfg, err := consumer.Parse([]byte(d.ConfigMap.Data[consumer.ConfigFileName]))
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := map[string]string{
		cfg.Database.DSNFile:        "shop-db/dsn",
		cfg.Kafka.SASL.UsernameFile: "kafka-user/username",
		cfg.Kafka.SASL.PasswordFile: "kafka-user/password",
		cfg.SentryDSNFile:           "sentry/dsn",
		cfg.Kafka.TLS.CAFile:        "kafka-tls/ca.crt",
		cfg.Kafka.TLS.CertFile:      "kafka-tls/user.crt",
		cfg.Kafka.TLS.KeyFile:       "kafka-tls/user.key",
	}
	if !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("secret files %v, want %v", files, wantFiles)
	}
	if !reflect.DeepEqual(cfg.SecretFiles(), sortedKeysOf(wantFiles, cfg.SecretFiles())) {
		t.Errorf("the consumer watches %v", cfg.SecretFiles())
	}
}

// sortedKeysOf returns the keys of m in the order of like when they are the same set.
func sortedKeysOf(m map[string]string, like []string) []string {
	if len(m) != len(like) {
		return nil
	}
	for _, k := range like {
		if _, ok := m[k]; !ok {
			return nil
		}
	}
	return like
}

func TestBuildDesiredChildren(t *testing.T) {
	cases := []struct {
		name         string
		modify       func(*kafkasubv1alpha1.KafkaSubscription)
		wantReplicas int32
		wantPDB      bool
		wantStrategy appsv1.DeploymentStrategyType
	}{
		{"Two replicas get a PodDisruptionBudget", func(*kafkasubv1alpha1.KafkaSubscription) {}, 2, true, appsv1.RollingUpdateDeploymentStrategyType},
		{"One replica gets no PodDisruptionBudget", func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.Replicas = ptr.To[int32](1) }, 1, false, appsv1.RollingUpdateDeploymentStrategyType},
		{"Unset replicas mean one", func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.Replicas = nil }, 1, false, appsv1.RollingUpdateDeploymentStrategyType},
		{"Suspend scales to zero and drops the PodDisruptionBudget", func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.Suspend = true }, 0, false, appsv1.RollingUpdateDeploymentStrategyType},
		{"SQLite recreates its single pod instead of rolling", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.Replicas = ptr.To[int32](1)
			k.Spec.Database.Driver = kafkasubv1alpha1.DatabaseDriverSQLite
		}, 1, false, appsv1.RecreateDeploymentStrategyType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := testSubscription()
			tc.modify(k)
			d := mustBuild(t, k)
			if got := *d.Deployment.Spec.Replicas; got != tc.wantReplicas {
				t.Errorf("replicas = %d, want %d", got, tc.wantReplicas)
			}
			if (d.PodDisruptionBudget != nil) != tc.wantPDB {
				t.Errorf("PodDisruptionBudget = %v, want present %v", d.PodDisruptionBudget, tc.wantPDB)
			}
			if d.Deployment.Spec.Strategy.Type != tc.wantStrategy {
				t.Errorf("strategy = %s, want %s", d.Deployment.Spec.Strategy.Type, tc.wantStrategy)
			}
			if d.Service.Spec.Ports[0].Port != 8080 || d.Service.Spec.Ports[0].Name != MetricsPortName {
				t.Errorf("service ports = %+v", d.Service.Spec.Ports)
			}
			if _, ok := d.ConfigMap.Data[consumer.ConfigFileName]; !ok {
				t.Errorf("ConfigMap has no %s", consumer.ConfigFileName)
			}
		})
	}
}

// TestConfigMapErrorHandling reads the consumer's config back from the ConfigMap, as the
// consumer will, and validates it with the secret values the pod would read.
func TestConfigMapErrorHandling(t *testing.T) {
	cases := []struct {
		name       string
		modify     func(*kafkasubv1alpha1.KafkaSubscription)
		wantCreate bool
		wantPolicy map[consumer.ErrorClass]consumer.ErrorAction
	}{
		{"A subscription without either leaves the topic alone and dead-letters every permanent class", func(*kafkasubv1alpha1.KafkaSubscription) {}, false, nil},
		{"deadLetter.create asks the consumer to create the topic", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.DeadLetter.Create = true
		}, true, nil},
		{"A policy that skips one class and dead-letters another is rendered as it is", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.ErrorPolicy = kafkasubv1alpha1.ErrorPolicy{"UnexpectedAttributes": "skip", "RetriesExhausted": "deadLetter"}
		}, false, map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassUnexpectedAttributes: consumer.ActionSkip, consumer.ClassRetriesExhausted: consumer.ActionDeadLetter}},
		{"A policy that retries a handler's own class with max attempts is rendered as it is", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.DeadLetter.Create = true
			k.Spec.Retry.MaxAttempts = 3
			k.Spec.ErrorPolicy = kafkasubv1alpha1.ErrorPolicy{"OrderLocked": "retry", "DatabaseError": "retry", "HandlerPanic": "skip"}
		}, true, map[consumer.ErrorClass]consumer.ErrorAction{"OrderLocked": consumer.ActionRetry, consumer.ClassDatabaseError: consumer.ActionRetry, consumer.ClassHandlerPanic: consumer.ActionSkip}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := testSubscription()
			withAllSecrets(k)
			tc.modify(k)
			data := mustBuild(t, k).ConfigMap.Data[consumer.ConfigFileName]
			c, err := consumer.Parse([]byte(data))
			if err != nil {
				t.Fatalf("parse the ConfigMap's config: %v\n%s", err, data)
			}
			if c.DeadLetter.Create != tc.wantCreate {
				t.Errorf("deadLetter.create = %t, want %t\n%s", c.DeadLetter.Create, tc.wantCreate, data)
			}
			if !reflect.DeepEqual(c.ErrorPolicy, tc.wantPolicy) {
				t.Errorf("errorPolicy = %v, want %v\n%s", c.ErrorPolicy, tc.wantPolicy, data)
			}
			c.DatabaseDSN, c.SASLUsername, c.SASLPassword, c.SentryDSN = "postgres://db", "user", "password", "https://sentry"
			if err := c.Validate(); err != nil {
				t.Errorf("the consumer refuses the rendered config: %v\n%s", err, data)
			}
		})
	}
}

func TestConfigHash(t *testing.T) {
	cases := []struct {
		name       string
		modify     func(*kafkasubv1alpha1.KafkaSubscription)
		wantChange bool
	}{
		{"Changing the topic changes the hash", func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.Kafka.Topic = "other" }, true},
		{"Changing the retry policy changes the hash", func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.Retry.MaxAttempts = 3 }, true},
		{"Creating the dead-letter topic changes the hash", func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.DeadLetter.Create = true }, true},
		{"Changing the error policy changes the hash", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.ErrorPolicy = kafkasubv1alpha1.ErrorPolicy{"UnexpectedAttributes": kafkasubv1alpha1.ErrorActionSkip}
		}, true},
		{"Changing only the replicas keeps the hash", func(k *kafkasubv1alpha1.KafkaSubscription) { k.Spec.Replicas = ptr.To[int32](5) }, false},
		{"Changing only a pod label keeps the hash", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.Template.Labels = map[string]string{"a": "b"}
		}, false},
	}
	base := mustBuild(t, testSubscription()).ConfigHash
	if again := mustBuild(t, testSubscription()).ConfigHash; again != base {
		t.Fatalf("the same spec gave two hashes %s and %s", base, again)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := testSubscription()
			tc.modify(k)
			got := mustBuild(t, k).ConfigHash
			if (got != base) != tc.wantChange {
				t.Errorf("hash %s vs %s: want change %v", got, base, tc.wantChange)
			}
		})
	}
}

func TestNoSecretValueInRenderedObjects(t *testing.T) {
	// The builders only ever see references; make sure no object carries a value-like
	// field for a Secret: no env Value for the KAFKASUB_ variables, no Secret data.
	k := testSubscription()
	withAllSecrets(k)
	d := mustBuild(t, k)
	for _, obj := range d.Objects() {
		raw, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), `"stringData"`) || strings.Contains(string(raw), `"kind":"Secret"`) {
			t.Errorf("%T carries Secret data: %s", obj, raw)
		}
	}
	for _, e := range d.Deployment.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "KAFKASUB_") && e.Value != "" {
			t.Errorf("%s has a literal value", e.Name)
		}
	}
	if strings.Contains(d.ConfigMap.Data[consumer.ConfigFileName], "dsn:") {
		t.Errorf("the config file mentions a DSN:\n%s", d.ConfigMap.Data[consumer.ConfigFileName])
	}
}

func TestReferencedSecrets(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*kafkasubv1alpha1.KafkaSubscription)
		want   []SecretUse
	}{
		{"Only the database Secret by default", func(*kafkasubv1alpha1.KafkaSubscription) {}, []SecretUse{
			{Name: "shop-db", Keys: []string{"dsn"}, Fields: []string{"spec.database.dsnSecretRef"}},
		}},
		{"Every reference, sorted by Secret name", withAllSecrets, []SecretUse{
			{Name: "kafka-tls", Keys: []string{"ca.crt", "user.crt", "user.key"}, Fields: []string{"spec.kafka.tls.secretRef"}},
			{Name: "kafka-user", Keys: []string{"password", "username"}, Fields: []string{"spec.kafka.sasl.secretRef"}},
			{Name: "sentry", Keys: []string{"dsn"}, Fields: []string{"spec.errorReporting.sentry.dsnSecretRef"}},
			{Name: "shop-db", Keys: []string{"dsn"}, Fields: []string{"spec.database.dsnSecretRef"}},
		}},
		{"Two references to one Secret are merged", func(k *kafkasubv1alpha1.KafkaSubscription) {
			k.Spec.ErrorReporting = &kafkasubv1alpha1.ErrorReporting{Sentry: &kafkasubv1alpha1.SentryReporting{
				DSNSecretRef: kafkasubv1alpha1.SecretKeyReference{Name: "shop-db", Key: "sentry-dsn"},
			}}
		}, []SecretUse{
			{Name: "shop-db", Keys: []string{"dsn", "sentry-dsn"}, Fields: []string{"spec.database.dsnSecretRef", "spec.errorReporting.sentry.dsnSecretRef"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := testSubscription()
			tc.modify(k)
			if got := ReferencedSecrets(k); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestToApplyObjectDropsNullsAndStatus(t *testing.T) {
	d := mustBuild(t, testSubscription())
	u, err := toApplyObject(d.Deployment)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := u.Object["status"]; ok {
		t.Error("status is part of the apply request")
	}
	if _, ok := u.Object["metadata"].(map[string]any)["creationTimestamp"]; ok {
		t.Error("metadata.creationTimestamp is part of the apply request")
	}
	if u.GetAPIVersion() != "apps/v1" || u.GetKind() != "Deployment" || u.GetName() != "inventory-consumer" {
		t.Errorf("identity = %s %s %s", u.GetAPIVersion(), u.GetKind(), u.GetName())
	}
}

func TestConsumerImage(t *testing.T) {
	cases := []struct {
		name      string
		specImage string
		optImage  string
		want      string
	}{
		{"The subscription's image wins", "registry.example/custom:2", "registry.example/kafkasub:1.0", "registry.example/custom:2"},
		{"The manager's image is the default", "", "registry.example/kafkasub:1.0", "registry.example/kafkasub:1.0"},
		{"The built-in default is the last resort", "", "", DefaultConsumerImage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := testSubscription()
			k.Spec.Template.Image = tc.specImage
			d, err := BuildDesired(k, BuildOptions{ConsumerImage: tc.optImage})
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Deployment.Spec.Template.Spec.Containers[0].Image; got != tc.want {
				t.Errorf("image = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodTemplatePassThrough(t *testing.T) {
	k := testSubscription()
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}
	affinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}},
	}}}
	k.Spec.Template = kafkasubv1alpha1.ConsumerTemplate{
		ImagePullPolicy:    corev1.PullAlways,
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "regcred"}},
		Resources:          &res,
		NodeSelector:       map[string]string{"kubernetes.io/os": "linux"},
		Tolerations:        []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "kafka", Effect: corev1.TaintEffectNoSchedule}},
		Affinity:           affinity,
		ServiceAccountName: "inventory",
	}
	ps := mustBuild(t, k).Deployment.Spec.Template.Spec
	c := ps.Containers[0]
	if c.ImagePullPolicy != corev1.PullAlways || !reflect.DeepEqual(c.Resources, res) {
		t.Errorf("container pull policy %q, resources %+v", c.ImagePullPolicy, c.Resources)
	}
	if !reflect.DeepEqual(ps.ImagePullSecrets, k.Spec.Template.ImagePullSecrets) || !reflect.DeepEqual(ps.NodeSelector, k.Spec.Template.NodeSelector) ||
		!reflect.DeepEqual(ps.Tolerations, k.Spec.Template.Tolerations) || !reflect.DeepEqual(ps.Affinity, affinity) || ps.ServiceAccountName != "inventory" {
		t.Errorf("pod spec does not carry the template: %+v", ps)
	}
}
