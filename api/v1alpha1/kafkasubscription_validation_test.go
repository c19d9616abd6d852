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

package v1alpha1_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
)

const (
	crdDir     = "../../config/crd/bases"
	samplesDir = "../../config/samples"
	crdFile    = crdDir + "/kafkasub.io_kafkasubscriptions.yaml"
	sampleFile = samplesDir + "/kafkasub_v1alpha1_kafkasubscription.yaml"
)

// k8s is a client of the envtest API server, nil when KUBEBUILDER_ASSETS is unset.
var k8s client.Client

func TestMain(m *testing.M) {
	// Parse the flags before starting servers: a bad flag exits the process, which must
	// not leave an API server and etcd behind.
	flag.Parse()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		// The tests that need the API server skip themselves with a message.
		os.Exit(m.Run())
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		_ = env.Stop() // a CRD the API server refuses fails Start after the servers started
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := kafkasubv1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop envtest:", err)
	}
	os.Exit(code)
}

func needAPIServer(t *testing.T) {
	t.Helper()
	if k8s == nil {
		t.Skip("needs a kube-apiserver: set KUBEBUILDER_ASSETS=$(hack/envtest.sh)")
	}
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "api-test-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// readObjects decodes every object of the YAML files in dir.
func readObjects(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML files in %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if u.GetKind() == "" {
				t.Fatalf("%s: an object without kind: `kubectl apply -f %s` would fail on it", f, dir)
			}
			objs = append(objs, u)
		}
	}
	return objs
}

func TestEnvtestSmoke(t *testing.T) {
	needAPIServer(t)
	ctx := context.Background()
	ns := newNamespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: ns}, Data: map[string]string{"hello": "world"}}
	if err := k8s.Create(ctx, cm); err != nil {
		t.Fatalf("create ConfigMap: %v", err)
	}
	got := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(cm), got); err != nil {
		t.Fatalf("get ConfigMap: %v", err)
	}
	if got.Data["hello"] != "world" || got.UID == "" {
		t.Errorf("read back %+v", got)
	}
}

// TestSamplesAreAccepted is `kubectl apply -f config/samples/` against a real API server.
func TestSamplesAreAccepted(t *testing.T) {
	needAPIServer(t)
	ctx := context.Background()
	ns := newNamespace(t)
	objs := readObjects(t, samplesDir)
	kinds := map[string]bool{}
	for _, u := range objs {
		u.SetNamespace(ns)
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		kinds[u.GetKind()] = true
	}
	if !kinds["KafkaSubscription"] || !kinds["Secret"] {
		t.Errorf("the samples hold %v, want a KafkaSubscription and the Secret it references", kinds)
	}
	ksub := &kafkasubv1alpha1.KafkaSubscription{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "inventory"}, ksub); err != nil {
		t.Fatalf("get the sample subscription: %v", err)
	}
	if ksub.Spec.Handler != "inventory.product-updates" || ksub.ConsumerGroup() != ns+".inventory" {
		t.Errorf("sample read back as %+v", ksub.Spec)
	}
	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: ksub.Spec.Database.DSNSecretRef.Name}, secret); err != nil {
		t.Fatalf("the sample's database Secret: %v", err)
	}
	if _, ok := secret.Data[ksub.Spec.Database.DSNSecretRef.Key]; !ok {
		t.Errorf("the sample Secret has no key %q", ksub.Spec.Database.DSNSecretRef.Key)
	}
}

func TestDefaults(t *testing.T) {
	needAPIServer(t)
	ctx := context.Background()
	ns := newNamespace(t)
	k := &kafkasubv1alpha1.KafkaSubscription{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: ns},
		Spec: kafkasubv1alpha1.KafkaSubscriptionSpec{
			Handler: "inventory.product-updates",
			Kafka: kafkasubv1alpha1.KafkaSource{
				BootstrapServers: []kafkasubv1alpha1.BootstrapServer{"kafka:9092"},
				Topic:            "in",
				SASL: &kafkasubv1alpha1.KafkaSASL{
					Mechanism: kafkasubv1alpha1.SASLMechanismSCRAMSHA256,
					SecretRef: kafkasubv1alpha1.SecretReference{Name: "kafka-user"},
				},
			},
			DeadLetter: kafkasubv1alpha1.DeadLetter{Topic: "in.dlq"},
			Database: kafkasubv1alpha1.Database{
				Driver:       kafkasubv1alpha1.DatabaseDriverSQLite,
				DSNSecretRef: kafkasubv1alpha1.SecretKeyReference{Name: "db", Key: "dsn"},
			},
		},
	}
	if err := k8s.Create(ctx, k); err != nil {
		t.Fatalf("create a minimal subscription: %v", err)
	}
	s := k.Spec
	if s.Replicas == nil || *s.Replicas != 1 {
		t.Errorf("replicas = %v, want 1", s.Replicas)
	}
	if s.Kafka.InitialOffset != kafkasubv1alpha1.InitialOffsetEarliest {
		t.Errorf("initialOffset = %q, want earliest", s.Kafka.InitialOffset)
	}
	if s.Retry.InitialBackoff == nil || s.Retry.InitialBackoff.Duration != time.Second ||
		s.Retry.MaxBackoff == nil || s.Retry.MaxBackoff.Duration != time.Minute || s.Retry.MaxAttempts != 0 {
		t.Errorf("retry = %+v, want 0 attempts, 1s, 1m", s.Retry)
	}
	if s.Kafka.SASL.UsernameKey != "username" || s.Kafka.SASL.PasswordKey != "password" {
		t.Errorf("sasl keys = %q, %q", s.Kafka.SASL.UsernameKey, s.Kafka.SASL.PasswordKey)
	}
}

// sample returns the sample subscription as an unstructured object.
func sample(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func set(t *testing.T, u *unstructured.Unstructured, value any, path ...string) {
	t.Helper()
	if err := unstructured.SetNestedField(u.Object, value, path...); err != nil {
		t.Fatalf("set %v: %v", path, err)
	}
}

func TestValidationRules(t *testing.T) {
	needAPIServer(t)
	ctx := context.Background()
	ns := newNamespace(t)
	spec := func(path ...string) []string { return append([]string{"spec"}, path...) }

	cases := []struct {
		name   string
		modify func(t *testing.T, u *unstructured.Unstructured)
		// want is a part of the API server's error message; empty means accepted.
		want string
	}{
		{"The sample is accepted", func(*testing.T, *unstructured.Unstructured) {}, ""},
		{"A dead-letter topic equal to the source topic is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "inventory_management_product_updates", spec("deadLetter", "topic")...)
		}, "spec.deadLetter.topic: Invalid value: deadLetter.topic must differ from kafka.topic, both are inventory_management_product_updates"},
		{"A subscription without a dead-letter topic is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, spec("deadLetter")...)
		}, "spec.deadLetter: Required value"},
		{"A topic with a space is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "inventory updates", spec("kafka", "topic")...)
		}, "a Kafka topic name may contain only ASCII letters, digits, '.', '_' and '-'"},
		{"A dead-letter topic with a slash is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "dlq/inventory", spec("deadLetter", "topic")...)
		}, "a Kafka topic name may contain only"},
		{"The topic '..' is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "..", spec("kafka", "topic")...)
		}, "a Kafka topic name cannot be '.' or '..'"},
		{"A topic longer than 249 characters is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, strings.Repeat("t", 250), spec("kafka", "topic")...)
		}, "249"},
		{"No bootstrap server is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, []any{}, spec("kafka", "bootstrapServers")...)
		}, "should have at least 1 items"},
		{"A bootstrap server without a port is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, []any{"kafka.kafka"}, spec("kafka", "bootstrapServers")...)
		}, "a bootstrap server must be host:port"},
		{"A bootstrap server with port 99999 is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, []any{"kafka:99999"}, spec("kafka", "bootstrapServers")...)
		}, "a bootstrap server must be host:port with a port from 1 to 65535"},
		{"A bootstrap server with an empty host is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, []any{":9092"}, spec("kafka", "bootstrapServers")...)
		}, "a bootstrap server must be host:port"},
		{"An IPv6 bootstrap server is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, []any{"[::1]:9092", "10.0.0.1:9093"}, spec("kafka", "bootstrapServers")...)
		}, ""},
		{"SQLite with two replicas is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "sqlite", spec("database", "driver")...)
			set(t, u, int64(2), spec("replicas")...)
		}, "spec.replicas: Invalid value: database.driver sqlite allows at most one replica"},
		{"SQLite with one replica is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "sqlite", spec("database", "driver")...)
			set(t, u, int64(1), spec("replicas")...)
		}, ""},
		{"An initial backoff longer than the max backoff is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "2m", spec("retry", "initialBackoff")...)
			set(t, u, "1m", spec("retry", "maxBackoff")...)
		}, "spec.retry.initialBackoff: Invalid value: retry.initialBackoff 2m must not be longer than retry.maxBackoff 1m"},
		{"An initial backoff equal to the max backoff is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "90s", spec("retry", "initialBackoff")...)
			set(t, u, "1m30s", spec("retry", "maxBackoff")...)
		}, ""},
		{"A backoff that is not a duration is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "soon", spec("retry", "initialBackoff")...)
		}, "retry.initialBackoff must be a positive duration"},
		{"A zero max backoff is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "0s", spec("retry", "maxBackoff")...)
		}, "retry.maxBackoff must be a positive duration"},
		{"Negative max attempts are rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, int64(-1), spec("retry", "maxAttempts")...)
		}, "spec.retry.maxAttempts: Invalid value: -1: spec.retry.maxAttempts in body should be greater than or equal to 0"},
		{"Negative replicas are rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, int64(-1), spec("replicas")...)
		}, "spec.replicas in body should be greater than or equal to 0"},
		{"Zero replicas are accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, int64(0), spec("replicas")...)
		}, ""},
		{"A handler the operator has never heard of is accepted: the image decides", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "orderstatus.updates", spec("handler")...)
		}, ""},
		{"A handler name of 253 characters is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, strings.Repeat("h", 253), spec("handler")...)
		}, ""},
		{"A handler name of 254 characters is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, strings.Repeat("h", 254), spec("handler")...)
		}, "spec.handler: Too long"},
		{"A handler name with capitals is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "Inventory.ProductUpdates", spec("handler")...)
		}, `spec.handler: Invalid value: "Inventory.ProductUpdates": a handler name may contain only lowercase letters, digits, '-' and '.'`},
		{"A handler name ending in a dot is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "inventory.", spec("handler")...)
		}, "a handler name may contain only lowercase letters, digits, '-' and '.', and must start and end with a letter or digit"},
		{"A handler name with an underscore is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "inventory_updates", spec("handler")...)
		}, "a handler name may contain only"},
		{"An empty handler name is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "", spec("handler")...)
		}, "spec.handler"},
		{"An unknown initial offset is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "middle", spec("kafka", "initialOffset")...)
		}, `spec.kafka.initialOffset: Unsupported value: "middle"`},
		{"An unknown database driver is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "oracle", spec("database", "driver")...)
		}, `spec.database.driver: Unsupported value: "oracle"`},
		{"An offset table that is not a plain SQL identifier is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "offsets; drop table products", spec("database", "offsetTable")...)
		}, "offsetTable must be a plain SQL identifier"},
		{"An offset table of letters, digits and '_' is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "orders_kafka_offsets", spec("database", "offsetTable")...)
		}, ""},
		{"More database connections than the limit are rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, int64(5000), spec("database", "maxConnections")...)
		}, "spec.database.maxConnections: Invalid value: 5000: spec.database.maxConnections in body should be less than or equal to 1000"},
		{"SQLite with more than one connection is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "sqlite", spec("database", "driver")...)
			set(t, u, int64(1), spec("replicas")...)
			set(t, u, int64(4), spec("database", "maxConnections")...)
		}, "spec.database.maxConnections: Invalid value: database.maxConnections: SQLite has one connection"},
		{"PostgreSQL with 40 connections is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, int64(40), spec("database", "maxConnections")...)
		}, ""},
		{"A database without a DSN Secret is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, spec("database", "dsnSecretRef")...)
		}, "spec.database.dsnSecretRef: Required value"},
		{"A Secret key with a slash is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "a/b", spec("database", "dsnSecretRef", "key")...)
		}, "a Secret key may contain only letters, digits, '-', '_' and '.'"},
		{"A Secret name with capitals is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, "Shop-DB", spec("database", "dsnSecretRef", "name")...)
		}, "a Secret name may contain only lowercase letters"},
		{"An unknown SASL mechanism is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"mechanism": "GSSAPI", "secretRef": map[string]any{"name": "kafka-user"}}, spec("kafka", "sasl")...)
		}, `spec.kafka.sasl.mechanism: Unsupported value: "GSSAPI"`},
		{"SCRAM with a Secret is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"mechanism": "SCRAM-SHA-512", "secretRef": map[string]any{"name": "kafka-user"}}, spec("kafka", "sasl")...)
		}, ""},
		{"A client certificate without its key is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"secretRef": map[string]any{"name": "kafka-tls"}, "certKey": "tls.crt"}, spec("kafka", "tls")...)
		}, "spec.kafka.tls.keyKey: Invalid value: tls.certKey and tls.keyKey must be set together: a client certificate needs its private key, and certKey is tls.crt while keyKey is not set"},
		{"A client key without its certificate is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"secretRef": map[string]any{"name": "kafka-tls"}, "keyKey": "tls.key"}, spec("kafka", "tls")...)
		}, "spec.kafka.tls.certKey: Invalid value: tls.certKey and tls.keyKey must be set together: a client certificate needs its private key, and keyKey is tls.key while certKey is not set"},
		{"TLS keys without a Secret are rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"caKey": "ca.crt"}, spec("kafka", "tls")...)
		}, "spec.kafka.tls.caKey: Invalid value: tls.caKey ca.crt names a key of tls.secretRef, which is not set"},
		{"Mutual TLS from a Secret is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"secretRef": map[string]any{"name": "kafka-tls"}, "certKey": "tls.crt", "keyKey": "tls.key"}, spec("kafka", "tls")...)
		}, ""},
		{"TLS with the system roots is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{}, spec("kafka", "tls")...)
		}, ""},
		{"An env variable reserved for the operator is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, []any{map[string]any{"name": "KAFKASUB_DATABASE_DSN", "value": "postgres://x"}}, spec("template", "env")...)
		}, "template.env cannot set names starting with KAFKASUB_"},
		{"A duplicate env variable is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, []any{map[string]any{"name": "A", "value": "1"}, map[string]any{"name": "A", "value": "2"}}, spec("template", "env")...)
		}, "Duplicate value"},
		{"A full pod template is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{
				"image":              "registry.example/kafkasub:1.0",
				"imagePullPolicy":    "IfNotPresent",
				"resources":          map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "64Mi"}},
				"nodeSelector":       map[string]any{"kubernetes.io/os": "linux"},
				"tolerations":        []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "kafka", "effect": "NoSchedule"}},
				"serviceAccountName": "inventory",
				"labels":             map[string]any{"team": "shop"},
				"annotations":        map[string]any{"example.com/owner": "shop"},
				"env":                []any{map[string]any{"name": "LOG_LEVEL", "value": "debug"}},
			}, spec("template")...)
		}, ""},
		{"A dead-letter topic the consumer creates is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, true, spec("deadLetter", "create")...)
		}, ""},
		{"An error policy that skips, dead-letters and retries with max attempts is accepted", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, int64(5), spec("retry", "maxAttempts")...)
			set(t, u, map[string]any{
				"UnexpectedAttributes": "skip", "InvalidPayload": "deadLetter", "DatabaseError": "retry",
				"OrderLocked": "retry", "RetriesExhausted": "deadLetter",
			}, spec("errorPolicy")...)
		}, ""},
		{"An error policy without retry is accepted with max attempts 0", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"UnexpectedAttributes": "skip", "RetriesExhausted": "skip"}, spec("errorPolicy")...)
		}, ""},
		{"An unknown error action is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"InvalidPayload": "drop"}, spec("errorPolicy")...)
		}, `spec.errorPolicy.InvalidPayload: Unsupported value: "drop": supported values: "deadLetter", "retry", "skip"`},
		{"A policy for a transient class is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"DatabaseUnavailable": "skip", "InvalidPayload": "skip"}, spec("errorPolicy")...)
		}, "spec.errorPolicy: Invalid value: errorPolicy cannot name DatabaseUnavailable: it is transient, and transient classes are always retried"},
		{"Retrying RetriesExhausted is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, int64(3), spec("retry", "maxAttempts")...)
			set(t, u, map[string]any{"RetriesExhausted": "retry"}, spec("errorPolicy")...)
		}, "spec.errorPolicy.[RetriesExhausted]: Invalid value: errorPolicy.RetriesExhausted cannot be retry: the message has already run out of retries"},
		{"Retrying with max attempts 0 is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, int64(0), spec("retry", "maxAttempts")...)
			set(t, u, map[string]any{"ValidationFailed": "retry", "InvalidPayload": "skip"}, spec("errorPolicy")...)
		}, "spec.errorPolicy: Invalid value: errorPolicy retries ValidationFailed with retry.maxAttempts 0: that would retry a message that can never succeed forever, blocking its partition; set retry.maxAttempts"},
		{"Retrying with max attempts unset is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, spec("retry")...)
			set(t, u, map[string]any{"OrderLocked": "retry"}, spec("errorPolicy")...)
		}, "errorPolicy retries OrderLocked with retry.maxAttempts 0"},
		{"An error class that is not a name is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"invalid-payload": "skip"}, spec("errorPolicy")...)
		}, "errorPolicy class names are 1 to 63 letters and digits starting with a letter, e.g. InvalidPayload; not invalid-payload"},
		{"An error class of 64 characters is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			set(t, u, map[string]any{"C" + strings.Repeat("x", 63): "skip"}, spec("errorPolicy")...)
		}, "errorPolicy class names are 1 to 63 letters and digits"},
		{"An error policy of 33 classes is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			p := map[string]any{}
			for i := range 33 {
				p[fmt.Sprintf("Class%d", i)] = "skip"
			}
			set(t, u, p, spec("errorPolicy")...)
		}, "spec.errorPolicy: Too many: 33: must have at most 32 items"},
		{"A name longer than 54 characters is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			u.SetName(strings.Repeat("n", 55))
		}, "metadata.name must be at most 54 characters"},
		{"A name starting with a digit is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			u.SetName("1inventory")
		}, "metadata.name must start with a lowercase letter"},
		{"A name with a dot is rejected", func(t *testing.T, u *unstructured.Unstructured) {
			u.SetName("shop.inventory")
		}, "metadata.name must start with a lowercase letter and contain only lowercase letters, digits and '-'"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := sample(t)
			u.SetNamespace(ns)
			u.SetName(fmt.Sprintf("case-%d", i))
			tc.modify(t, u)
			err := k8s.Create(ctx, u)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// readCRD returns the generated KafkaSubscription CRD.
func readCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatal(err)
	}
	return crd
}

// TestHandlerNamePatternMatchesTheCRD keeps HandlerNamePattern and HandlerNameMaxLength, which
// the consumer binary's test checks its registered handlers against, in step with the
// markers of Handler that the API server enforces.
func TestHandlerNamePatternMatchesTheCRD(t *testing.T) {
	crd := readCRD(t)
	prop := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["handler"]
	if len(prop.Enum) != 0 {
		t.Errorf("spec.handler has an enum %v: the API accepts any handler name of the pattern", prop.Enum)
	}
	if prop.MaxLength == nil || *prop.MaxLength != kafkasubv1alpha1.HandlerNameMaxLength {
		t.Errorf("spec.handler maxLength = %v, want HandlerNameMaxLength %d", prop.MaxLength, kafkasubv1alpha1.HandlerNameMaxLength)
	}
	want := "self.matches('" + kafkasubv1alpha1.HandlerNamePattern + "')"
	var rules []string
	for _, v := range prop.XValidations {
		rules = append(rules, v.Rule)
	}
	if !slices.Contains(rules, want) {
		t.Errorf("spec.handler rules %q, want %q: keep the marker of Handler and HandlerNamePattern in step and run make manifests", rules, want)
	}
}

// TestErrorPolicyConstantsMatchTheCRD keeps ErrorActions, ErrorClassPattern,
// ErrorPolicyMaxClasses, TransientErrorClasses and ErrorClassRetriesExhausted, which a test
// in controllers compares with the consumer's, in step with the markers the API server enforces.
func TestErrorPolicyConstantsMatchTheCRD(t *testing.T) {
	crd := readCRD(t)
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	prop := spec.Properties["errorPolicy"]
	if prop.MaxProperties == nil || *prop.MaxProperties != kafkasubv1alpha1.ErrorPolicyMaxClasses {
		t.Errorf("spec.errorPolicy maxProperties = %v, want ErrorPolicyMaxClasses %d", prop.MaxProperties, kafkasubv1alpha1.ErrorPolicyMaxClasses)
	}
	var enum []string
	if ap := prop.AdditionalProperties; ap != nil && ap.Schema != nil {
		for _, v := range ap.Schema.Enum {
			enum = append(enum, strings.Trim(string(v.Raw), `"`))
		}
	}
	var actions []string
	for _, a := range kafkasubv1alpha1.ErrorActions {
		actions = append(actions, string(a))
	}
	if !reflect.DeepEqual(enum, actions) {
		t.Errorf("spec.errorPolicy actions %v, want ErrorActions %v", enum, actions)
	}
	var rules []string
	for _, v := range prop.XValidations {
		rules = append(rules, v.Rule)
	}
	for _, v := range spec.XValidations {
		rules = append(rules, v.Rule)
	}
	all := strings.Join(rules, "\n")
	want := []string{"k.matches('" + kafkasubv1alpha1.ErrorClassPattern + "')", "'" + kafkasubv1alpha1.ErrorClassRetriesExhausted + "' in self"}
	for _, c := range kafkasubv1alpha1.TransientErrorClasses {
		want = append(want, "'"+c+"'")
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no error policy rule contains %s: keep the markers of ErrorPolicy in step with the constants and run make manifests\n%s", w, all)
		}
	}
}

func TestValidHandlerName(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"The inventory handler's name is valid", "inventory.product-updates", true},
		{"The example handler's name is valid", "orderstatus.updates", true},
		{"A single letter is valid", "a", true},
		{"A name of the maximum length is valid", strings.Repeat("a", kafkasubv1alpha1.HandlerNameMaxLength), true},
		{"A name one byte too long is invalid", strings.Repeat("a", kafkasubv1alpha1.HandlerNameMaxLength+1), false},
		{"An empty name is invalid", "", false},
		{"A name with capitals is invalid", "Inventory", false},
		{"A name starting with a dash is invalid", "-inventory", false},
		{"A name ending with a dot is invalid", "inventory.", false},
		{"A name with a slash is invalid", "inventory/updates", false},
		{"A name with a space is invalid", "inventory updates", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := kafkasubv1alpha1.ValidHandlerName(tc.in); got != tc.want {
				t.Errorf("ValidHandlerName(%q) = %t, want %t", tc.in, got, tc.want)
			}
		})
	}
}

// TestPrinterColumns keeps `kubectl get ksub` as the README shows it.
func TestPrinterColumns(t *testing.T) {
	crd := readCRD(t)
	var names, wide []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		if c.Priority == 0 {
			names = append(names, strings.ToUpper(c.Name))
		} else {
			wide = append(wide, strings.ToUpper(c.Name))
		}
	}
	want := []string{"TOPIC", "DEAD-LETTER", "READY", "REPLICAS", "LAG", "AGE"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("columns %v, want %v", names, want)
	}
	if !slices.Contains(wide, "DEAD-LETTERS") {
		t.Errorf("-o wide columns %v, want DEAD-LETTERS among them", wide)
	}
	if !slices.Contains(crd.Spec.Names.ShortNames, "ksub") || !slices.Contains(crd.Spec.Names.Categories, "kafka") {
		t.Errorf("names = %+v, want short name ksub and category kafka", crd.Spec.Names)
	}
}

// TestDescriptionsHaveNoHardLineBreaks keeps `kubectl explain ksub.spec` in whole sentences:
// controller-gen copies a doc comment's line breaks into the CRD, so the API's own fields
// are documented one line per paragraph. The Kubernetes types embedded in the template
// and the conditions keep their upstream descriptions.
func TestDescriptionsHaveNoHardLineBreaks(t *testing.T) {
	crd := readCRD(t)
	upstream := map[string]bool{
		".apiVersion": true, ".kind": true, ".status.conditions": true,
		".spec.template.resources": true, ".spec.template.affinity": true, ".spec.template.tolerations": true,
		".spec.template.env": true, ".spec.template.imagePullSecrets": true,
	}
	var walk func(path string, s apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s apiextensionsv1.JSONSchemaProps) {
		if upstream[path] {
			return
		}
		if strings.Contains(strings.ReplaceAll(s.Description, "\n\n", ""), "\n") {
			t.Errorf("%s: the description has a line break inside a paragraph: %q", path, s.Description)
		}
		for name, p := range s.Properties {
			walk(path+"."+name, p)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path, *s.Items.Schema)
		}
	}
	walk("", *crd.Spec.Versions[0].Schema.OpenAPIV3Schema)
}
