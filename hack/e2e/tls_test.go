package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
)

// Secrets of the TLS and SASL step.
const (
	tlsSecretName  = "kafka-tls"
	saslSecretName = "kafka-user"
)

// newTestCA returns a CA certificate (PEM) and a server TLS configuration for 127.0.0.1
// and localhost signed by it.
func newTestCA(t *testing.T) ([]byte, *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kafkasub e2e CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	ca, err := x509.ParseCertificate(caDER)
	must(t, err)

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
	}
}

// kafkaTLSAndSASL moves the subscription to a broker that requires TLS (CA from a mounted
// Secret) and SASL SCRAM-SHA-512 (credentials from secretKeyRef env): the pods roll, the
// new consumers reach the broker with what their Pod gives them, and consume.
func (s *scenario) kafkaTLSAndSASL(t *testing.T) {
	caPEM, serverTLS := newTestCA(t)
	user := "kafkasub-e2e"
	pass := consumertest.UniqueName("scram-password")
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(serverTLS),
		kfake.EnableSASL(),
		kfake.Superuser(consumer.SASLSCRAMSHA512, user, pass),
		kfake.SeedTopics(partitions, s.topic, s.dlq),
	)
	if err != nil {
		t.Fatalf("start a TLS and SASL kfake broker: %v", err)
	}
	s.t.Cleanup(cluster.Close) // lives until the subscription is deleted
	brokers := cluster.ListenAddrs()
	s.secrets = append(s.secrets, pass)
	t.Logf("in-process kfake broker with TLS and SASL SCRAM-SHA-512 at %v", brokers)

	for _, sec := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: tlsSecretName, Namespace: s.ns}, Data: map[string][]byte{kafkasubv1alpha1.DefaultTLSCAKey: caPEM}},
		{ObjectMeta: metav1.ObjectMeta{Name: saslSecretName, Namespace: s.ns}, StringData: map[string]string{
			kafkasubv1alpha1.DefaultSASLUsernameKey: user, kafkasubv1alpha1.DefaultSASLPasswordKey: pass,
		}},
	} {
		must(t, s.cp.client.Create(s.ctx, sec))
	}
	old := map[types.UID]bool{}
	for _, pp := range s.kubelet.running() {
		old[pp.pod.UID] = true
	}
	servers := make([]any, len(brokers))
	for i, b := range brokers {
		servers[i] = b
	}
	t.Logf("patch spec.kafka: bootstrapServers %v, tls.secretRef %s, sasl SCRAM-SHA-512 with secretRef %s", brokers, tlsSecretName, saslSecretName)
	must(t, s.patch(s.ctx, map[string]any{"spec": map[string]any{"kafka": map[string]any{
		"bootstrapServers": servers,
		"tls":              map[string]any{"secretRef": map[string]any{"name": tlsSecretName}},
		"sasl":             map[string]any{"mechanism": consumer.SASLSCRAMSHA512, "secretRef": map[string]any{"name": saslSecretName}},
	}}}))
	replicas := s.replicasNow(t)
	s.waitSubscriptionReady(t, int32(replicas))
	procs := s.waitConsumers(t, replicas, func(pp *podProcess) error {
		if old[pp.pod.UID] {
			return fmt.Errorf("still an old pod")
		}
		return nil
	})
	for _, pp := range procs {
		c := pp.config
		if c.Kafka.TLS == nil || c.Kafka.SASL == nil || c.Kafka.SASL.Mechanism != consumer.SASLSCRAMSHA512 {
			t.Fatalf("pod %s runs kafka tls %+v sasl %+v, want TLS and SCRAM-SHA-512", pp.pod.Name, c.Kafka.TLS, c.Kafka.SASL)
		}
		// The CA file the config names is the mounted Secret's key.
		data, err := os.ReadFile(filepath.Join(pp.dir, c.Kafka.TLS.CAFile))
		if err != nil || !bytes.Equal(data, caPEM) {
			t.Errorf("pod %s: the CA file %s (mounted from Secret %s): %v, content matches: %v", pp.pod.Name, c.Kafka.TLS.CAFile, tlsSecretName, err, bytes.Equal(data, caPEM))
		}
	}

	// A producer with the same credentials, from outside.
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	must(t, os.WriteFile(caFile, caPEM, 0o600))
	pcfg := &consumer.Config{
		Kafka:        consumer.KafkaConfig{ClientID: "kafkasub-e2e-producer", TLS: &consumer.TLSConfig{CAFile: caFile}, SASL: &consumer.SASLConfig{Mechanism: consumer.SASLSCRAMSHA512}},
		SASLUsername: user, SASLPassword: pass,
	}
	sc, err := consumer.SaramaConfig(pcfg)
	must(t, err)
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatalf("producer with TLS and SASL: %v", err)
	}
	defer producer.Close()
	first := s.products[0]
	value := fmt.Sprintf(`{"product_code": %q, "inventory_count": 66}`, first.Code)
	if _, off, err := producer.SendMessage(&sarama.ProducerMessage{Topic: s.topic, Partition: 0, Value: sarama.StringEncoder(value)}); err != nil {
		t.Fatalf("produce over TLS and SASL: %v", err)
	} else {
		t.Logf("produced %s to %s/0 at offset %d over TLS and SASL", value, s.topic, off)
	}
	s.waitInventory(t, first.Code, 66)

	// Neither the password nor the CA's private part is anywhere but in the Secrets.
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	s.assertNoSecretInChildren(ctx, t)
}
