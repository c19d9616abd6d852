package consumer_test

import (
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
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
)

// consumeOne runs the consumer with cfg against brokers and checks that one valid update
// sent with the same client settings is processed.
func consumeOne(t *testing.T, cfg *consumer.Config, first string) {
	t.Helper()
	r := startConsumer(t, cfg)
	sc, err := consumer.SaramaConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducer(cfg.Kafka.BootstrapServers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: cfg.Kafka.Topic,
		Value: sarama.StringEncoder(fmt.Sprintf(`{"product_code": %q, "inventory_count": 3}`, first))})
	if err != nil {
		t.Fatal(err)
	}
	if ev := r.out.outcome(t, 0, off); ev.Type != consumer.EventProcessed {
		t.Fatalf("outcome %s (%v), want processed", ev.Type, ev.Err)
	}
}

func TestTheConsumerAuthenticatesWithSASL(t *testing.T) {
	for _, mech := range []string{consumer.SASLPlain, consumer.SASLSCRAMSHA256, consumer.SASLSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			topic := consumertest.UniqueName("sasl")
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
				kfake.Superuser(mech, "kafkasub", "s3cret-"+mech), kfake.SeedTopics(1, topic, topic+".dlq"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			dsn, first := seededSQLite(t)
			cfg := consumertest.Config(c.ListenAddrs(), topic, topic+".dlq", consumer.DriverSQLite, dsn)
			cfg.Kafka.SASL = &consumer.SASLConfig{Mechanism: mech}
			cfg.SASLUsername, cfg.SASLPassword = "kafkasub", "s3cret-"+mech
			consumeOne(t, cfg, first.Code)
		})
	}
}

func TestTheConsumerConnectsWithTLS(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	serverCert := selfSignedServer(t, caFile)
	topic := consumertest.UniqueName("tls")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}}),
		kfake.SeedTopics(1, topic, topic+".dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dsn, first := seededSQLite(t)
	cfg := consumertest.Config(c.ListenAddrs(), topic, topic+".dlq", consumer.DriverSQLite, dsn)
	cfg.Kafka.TLS = &consumer.TLSConfig{CAFile: caFile}
	consumeOne(t, cfg, first.Code)
}

func TestSaramaConfigNamesABadTLSFile(t *testing.T) {
	cfg := consumertest.Config([]string{"127.0.0.1:9092"}, "t", "t.dlq", consumer.DriverSQLite, "x")
	cfg.Kafka.TLS = &consumer.TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing.crt")}
	if _, err := consumer.SaramaConfig(cfg); err == nil || !strings.Contains(err.Error(), "kafka.tls.caFile") {
		t.Fatalf("error %v, want one naming kafka.tls.caFile", err)
	}
}

// selfSignedServer writes a CA certificate to caFile and returns a server certificate for
// 127.0.0.1 signed by it.
func selfSignedServer(t *testing.T, caFile string) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafkasub test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	der, err := x509.CreateCertificate(rand.Reader, srv, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
