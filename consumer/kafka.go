package consumer

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// SaramaConfig returns the sarama configuration for cfg: the consumer group side (initial
// offset, committed records only, offsets marked by the pipeline and auto-committed,
// errors returned) and the
// dead-letter producer side (acks=all, idempotent, one request in flight per broker so
// order is kept), with TLS and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) when configured.
func SaramaConfig(cfg *Config) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.Version = sarama.DefaultVersion
	sc.ClientID = cfg.Kafka.ClientID
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if cfg.Kafka.InitialOffset == OffsetLatest {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	// Records of aborted transactions never reach the handler (nor do open ones until they
	// commit): a producer's rolled-back write must not change the database.
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	sc.Consumer.Group.Rebalance.Timeout = 30 * time.Second
	// Sized for memory: a fetch of 1 MiB per partition and 512 buffered messages keep a
	// consumer draining a topic into PostgreSQL under 80 MiB resident, where 4 MiB and
	// 1024 took 160-200 MiB, at the price of about a quarter of its throughput on a busy
	// 2-core machine (BenchmarkConsumerPeakRSS, BenchmarkPipelinePostgreSQL).
	sc.Consumer.Fetch.Default = 1 << 20
	sc.ChannelBufferSize = 512

	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 5
	sc.Producer.Retry.Backoff = 250 * time.Millisecond
	sc.Net.MaxOpenRequests = 1

	if t := cfg.Kafka.TLS; t != nil {
		tc, err := tlsConfig(t)
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if s := cfg.Kafka.SASL; s != nil {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = cfg.SASLUsername
		sc.Net.SASL.Password = cfg.SASLPassword
		switch s.Mechanism {
		case SASLPlain:
			sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case SASLSCRAMSHA256:
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.HashGeneratorFcn(sha256.New)} }
		case SASLSCRAMSHA512:
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.HashGeneratorFcn(sha512.New)} }
		default:
			return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not supported", s.Mechanism)
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka client configuration: %w", err)
	}
	return sc, nil
}

func tlsConfig(t *TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.caFile: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.certFile/keyFile: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// scramClient implements sarama.SCRAMClient with github.com/xdg-go/scram.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// topicID returns the ID the cluster gave topic when it created it (a topic deleted and
// created again, or the same name on another cluster, has another), or "" when the
// brokers predate topic IDs (Kafka < 2.8; sarama then negotiates a metadata version
// without them).
func topicID(client sarama.Client, topic string) (string, error) {
	b := client.LeastLoadedBroker()
	if b == nil {
		return "", errors.New("no broker to ask for the topic's metadata")
	}
	res, err := b.GetMetadata(sarama.NewMetadataRequest(client.Config().Version, []string{topic}))
	if err != nil {
		_ = b.Close() // the next call connects again
		return "", fmt.Errorf("read the metadata of topic %s: %w", topic, err)
	}
	for _, t := range res.Topics {
		if t.Name != topic {
			continue
		}
		if !errors.Is(t.Err, sarama.ErrNoError) {
			return "", fmt.Errorf("read the metadata of topic %s: %w", topic, t.Err)
		}
		if t.Uuid == (sarama.Uuid{}) {
			return "", nil
		}
		return t.Uuid.String(), nil
	}
	return "", fmt.Errorf("read the metadata of topic %s: not in the brokers' answer", topic)
}
