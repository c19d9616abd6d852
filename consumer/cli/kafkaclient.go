package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/pflag"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/embedded"
)

// kafkaFlags are the connection flags of produce and dlq. They fill a consumer.KafkaConfig
// so the tools reach the brokers exactly as the consumer does (consumer.SaramaConfig),
// TLS and SASL included; the SASL username and password come from the same environment
// variables as a pod's.
type kafkaFlags struct {
	brokers       []string
	tlsEnabled    bool
	caFile        string
	certFile      string
	keyFile       string
	saslMechanism string
	timeout       time.Duration
}

func (f *kafkaFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.brokers, "brokers", []string{embedded.DefaultListenAddr},
		"Kafka bootstrap servers as `host:port`, comma-separated (the default is where kafkasub dev listens)")
	fs.BoolVar(&f.tlsEnabled, "tls", false, "connect with TLS (implied by --tls-ca, --tls-cert)")
	fs.StringVar(&f.caFile, "tls-ca", "", "PEM file with the CA that signed the brokers' certificates")
	fs.StringVar(&f.certFile, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	fs.StringVar(&f.keyFile, "tls-key", "", "PEM client key for mutual TLS (with --tls-cert)")
	fs.StringVar(&f.saslMechanism, "sasl-mechanism", "",
		"SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; the username and password are read from "+
			consumer.EnvSASLUsername+" and "+consumer.EnvSASLPassword)
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the brokers before giving up")
}

// saramaConfig validates the flags and returns the client configuration: the consumer's
// (consumer.SaramaConfig) with short connect timeouts, so an unreachable broker fails fast.
func (f *kafkaFlags) saramaConfig(clientID string) (*sarama.Config, error) {
	if len(f.brokers) == 0 {
		return nil, errors.New("--brokers: at least one host:port is required")
	}
	for _, b := range f.brokers {
		if colon := strings.LastIndex(b, ":"); colon <= 0 || colon == len(b)-1 {
			return nil, fmt.Errorf("--brokers: %q is not host:port", b)
		}
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--timeout: must be positive, got %s", f.timeout)
	}
	cfg := &consumer.Config{Kafka: consumer.KafkaConfig{BootstrapServers: f.brokers, ClientID: clientID}}
	if f.tlsEnabled || f.caFile != "" || f.certFile != "" || f.keyFile != "" {
		if (f.certFile == "") != (f.keyFile == "") {
			return nil, errors.New("--tls-cert and --tls-key must be given together")
		}
		cfg.Kafka.TLS = &consumer.TLSConfig{CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile}
	}
	if f.saslMechanism != "" {
		switch f.saslMechanism {
		case consumer.SASLPlain, consumer.SASLSCRAMSHA256, consumer.SASLSCRAMSHA512:
		default:
			return nil, fmt.Errorf("--sasl-mechanism: %q must be %s, %s or %s", f.saslMechanism,
				consumer.SASLPlain, consumer.SASLSCRAMSHA256, consumer.SASLSCRAMSHA512)
		}
		cfg.Kafka.SASL = &consumer.SASLConfig{Mechanism: f.saslMechanism}
		cfg.SASLUsername = os.Getenv(consumer.EnvSASLUsername)
		cfg.SASLPassword = os.Getenv(consumer.EnvSASLPassword)
		if cfg.SASLUsername == "" || cfg.SASLPassword == "" {
			return nil, fmt.Errorf("--sasl-mechanism needs %s and %s in the environment",
				consumer.EnvSASLUsername, consumer.EnvSASLPassword)
		}
	}
	cfg.Default()
	sc, err := consumer.SaramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	dial := min(f.timeout, 5*time.Second)
	sc.Net.DialTimeout = dial
	sc.Net.ReadTimeout = f.timeout
	sc.Net.WriteTimeout = f.timeout
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	sc.Metadata.Full = false
	sc.Metadata.Timeout = f.timeout
	sc.Producer.Retry.Max = 3
	sc.Producer.Timeout = f.timeout
	sc.Consumer.MaxWaitTime = 50 * time.Millisecond
	return sc, nil
}

// client connects to the brokers; an unreachable cluster is one clear error. adjust
// changes the configuration before the client is made.
func (f *kafkaFlags) client(clientID string, adjust ...func(*sarama.Config)) (sarama.Client, error) {
	sc, err := f.saramaConfig(clientID)
	if err != nil {
		return nil, err
	}
	for _, a := range adjust {
		a(sc)
	}
	c, err := sarama.NewClient(f.brokers, sc)
	if err != nil {
		return nil, f.unreachable(err)
	}
	// A client connects lazily; ask for the cluster's brokers now so that an unreachable
	// cluster fails here, with the addresses named.
	if err := c.RefreshMetadata(); err != nil {
		_ = c.Close()
		return nil, f.unreachable(err)
	}
	return c, nil
}

// unreachable words a connection failure as one line naming the brokers.
func (f *kafkaFlags) unreachable(err error) error {
	return fmt.Errorf("cannot reach Kafka at %s: %s", strings.Join(f.brokers, ","), oneLine(err))
}

// oneLine flattens a multi-line error message (pgx and sarama join causes with newlines).
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			parts = append(parts, l)
		}
	}
	s := strings.Join(parts, "; ")
	return strings.ReplaceAll(s, ":; ", ": ")
}

// topicPartitions returns the partitions of topic, with an error naming the topic when it
// does not exist.
func topicPartitions(c sarama.Client, topic string) ([]int32, error) {
	if topic == "" {
		return nil, errors.New("--topic: a topic name is required")
	}
	parts, err := c.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil, fmt.Errorf("topic %q does not exist on %s", topic, brokerList(c))
	}
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", topic, err)
	}
	return parts, nil
}

func brokerList(c sarama.Client) string {
	var addrs []string
	for _, b := range c.Brokers() {
		addrs = append(addrs, b.Addr())
	}
	return strings.Join(addrs, ",")
}
