package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kafkasub/kafkasub/consumer/offsetstore"
)

// This file is the one contract between the operator and the consumer pods: the operator
// renders a Config into a ConfigMap (ConfigFileName) and mounts the secret values as files
// whose paths the Config names (database.dsnFile, kafka.sasl.usernameFile and passwordFile,
// sentryDSNFile, kafka.tls); the consumer reads both with Load. Outside a pod (demo, dev,
// tests) the secret values can come from the environment instead (the Env* constants).
// Nothing secret is ever part of the file.

// ConfigFileName is the key of the consumer configuration in the operator's ConfigMap and
// the file name under which the pod mounts it.
const ConfigFileName = "config.yaml"

// Environment variables that carry secret values into a consumer process where no file
// names them; Load reads them. Their values never appear in the config file, logs, events
// or status.
const (
	EnvDatabaseDSN  = "KAFKASUB_DATABASE_DSN"
	EnvSASLUsername = "KAFKASUB_KAFKA_SASL_USERNAME"
	EnvSASLPassword = "KAFKASUB_KAFKA_SASL_PASSWORD"
	EnvSentryDSN    = "KAFKASUB_SENTRY_DSN"
)

// Initial offsets.
const (
	OffsetEarliest = "earliest"
	OffsetLatest   = "latest"
)

// Database drivers.
const (
	DriverPostgres = "postgres"
	DriverMySQL    = "mysql"
	DriverSQLite   = "sqlite"
)

// maxDatabaseConnections bounds database.maxConnections.
const maxDatabaseConnections = 1000

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// Default ports of a consumer pod.
const (
	DefaultHealthAddr  = ":8081"
	DefaultMetricsAddr = ":8080"
)

// Duration is a time.Duration written as a Go duration string ("1s", "1m30s") in YAML and
// JSON, the same format as metav1.Duration in the KafkaSubscription spec.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "1s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Config is everything a consumer pod needs to run one subscription.
type Config struct {
	// Subscription names the KafkaSubscription ("namespace/name") this consumer runs for;
	// it is written into dead-letter headers and events.
	Subscription string `json:"subscription"`
	// Handler is the registered handler name, e.g. "inventory.product-updates".
	Handler    string           `json:"handler"`
	Kafka      KafkaConfig      `json:"kafka"`
	DeadLetter DeadLetterConfig `json:"deadLetter"`
	Retry      RetryConfig      `json:"retry"`
	// ErrorPolicy says what happens to a message whose error has a class (a permanent
	// class of the runtime's or a handler's own): ActionDeadLetter (the default), ActionRetry
	// or ActionSkip. Transient classes are always retried.
	ErrorPolicy map[ErrorClass]ErrorAction `json:"errorPolicy,omitempty"`
	Database    DatabaseConfig             `json:"database"`
	Batch       BatchConfig                `json:"batch"`
	// HealthAddr serves /healthz and /readyz.
	HealthAddr string `json:"healthAddr"`
	// MetricsAddr serves /metrics.
	MetricsAddr string `json:"metricsAddr"`
	// SentryEnabled reports errors to Sentry with the DSN from SentryDSNFile or EnvSentryDSN.
	SentryEnabled bool `json:"sentryEnabled,omitempty"`
	// SentryDSNFile is a file holding the Sentry DSN (a mounted Secret key).
	SentryDSNFile string `json:"sentryDSNFile,omitempty"`

	// Secret values, read from the files above (or the environment) by Load; never serialised.
	DatabaseDSN  string `json:"-"`
	SASLUsername string `json:"-"`
	SASLPassword string `json:"-"`
	SentryDSN    string `json:"-"`
}

// KafkaConfig is how the consumer reaches the brokers.
type KafkaConfig struct {
	BootstrapServers []string `json:"bootstrapServers"`
	Topic            string   `json:"topic"`
	ConsumerGroup    string   `json:"consumerGroup"`
	// InitialOffset is where a group without a committed offset starts: earliest or latest.
	InitialOffset string `json:"initialOffset"`
	// ClientID identifies the consumer to the brokers.
	ClientID string      `json:"clientID,omitempty"`
	TLS      *TLSConfig  `json:"tls,omitempty"`
	SASL     *SASLConfig `json:"sasl,omitempty"`
}

// TLSConfig names PEM files mounted into the pod. Empty file names are not used.
type TLSConfig struct {
	CAFile   string `json:"caFile,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

// SASLConfig selects the mechanism; the username and password come from the files it
// names (mounted Secret keys), or from the environment when it names none.
type SASLConfig struct {
	Mechanism    string `json:"mechanism"`
	UsernameFile string `json:"usernameFile,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
}

// DeadLetterConfig names the topic that receives permanently failed messages.
type DeadLetterConfig struct {
	Topic string `json:"topic"`
	// Create makes the consumer create the topic at start when it is missing, with the
	// source topic's partition count and replication factor (default false: the topic is
	// the cluster's business).
	Create bool `json:"create,omitempty"`
}

// RetryConfig bounds the exponential backoff for transient errors.
type RetryConfig struct {
	// MaxAttempts is how many times a message is tried before it is dead-lettered with
	// class RetriesExhausted; 0 means until it succeeds.
	MaxAttempts    int      `json:"maxAttempts"`
	InitialBackoff Duration `json:"initialBackoff"`
	MaxBackoff     Duration `json:"maxBackoff"`
}

// DatabaseConfig selects the driver; the DSN comes from DSNFile, or from the environment
// when that is empty.
type DatabaseConfig struct {
	Driver string `json:"driver"`
	// DSNFile is a file holding the data source name (a mounted Secret key).
	DSNFile string `json:"dsnFile,omitempty"`
	// Migrate runs the handler's migrations on start.
	Migrate bool `json:"migrate,omitempty"`
	// OffsetTable is the runtime's table of applied offsets, created on start
	// (default kafkasub_offsets).
	OffsetTable string `json:"offsetTable,omitempty"`
	// MaxConnections caps the connections to a PostgreSQL or MySQL database, kept open while
	// in use (default DefaultMaxConnections). SQLite always has one.
	MaxConnections int `json:"maxConnections,omitempty"`
}

// BatchConfig bounds how many consecutive messages of a partition are processed together.
type BatchConfig struct {
	// MaxMessages caps a batch; a batch is what is already fetched, up to this many.
	MaxMessages int `json:"maxMessages"`
	// MaxWait, when set, waits up to this long for a batch to fill (default: no wait).
	MaxWait Duration `json:"maxWait,omitempty"`
}

// Default fills every unset field with its default. It never overwrites a set field.
func (c *Config) Default() {
	if c.Kafka.InitialOffset == "" {
		c.Kafka.InitialOffset = OffsetEarliest
	}
	if c.Kafka.ClientID == "" {
		c.Kafka.ClientID = "kafkasub"
	}
	if c.Retry.InitialBackoff.Duration == 0 {
		c.Retry.InitialBackoff.Duration = time.Second
	}
	if c.Retry.MaxBackoff.Duration == 0 {
		c.Retry.MaxBackoff.Duration = time.Minute
	}
	if c.Batch.MaxMessages == 0 {
		c.Batch.MaxMessages = 500
	}
	if c.Database.OffsetTable == "" {
		c.Database.OffsetTable = offsetstore.DefaultTable
	}
	if c.HealthAddr == "" {
		c.HealthAddr = DefaultHealthAddr
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = DefaultMetricsAddr
	}
}

// Validate returns every problem with the configuration, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Handler == "" {
		bad("handler", "is required")
	}
	if len(c.Kafka.BootstrapServers) == 0 {
		bad("kafka.bootstrapServers", "at least one host:port is required")
	}
	for i, s := range c.Kafka.BootstrapServers {
		if colon := strings.LastIndex(s, ":"); colon <= 0 || colon == len(s)-1 {
			bad(fmt.Sprintf("kafka.bootstrapServers[%d]", i), "%q is not host:port", s)
		}
	}
	if c.Kafka.Topic == "" {
		bad("kafka.topic", "is required")
	}
	if c.Kafka.ConsumerGroup == "" {
		bad("kafka.consumerGroup", "is required")
	}
	switch c.Kafka.InitialOffset {
	case OffsetEarliest, OffsetLatest:
	default:
		bad("kafka.initialOffset", "%q must be %s or %s", c.Kafka.InitialOffset, OffsetEarliest, OffsetLatest)
	}
	if c.Kafka.SASL != nil {
		switch c.Kafka.SASL.Mechanism {
		case SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512:
		default:
			bad("kafka.sasl.mechanism", "%q must be %s, %s or %s", c.Kafka.SASL.Mechanism, SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512)
		}
		if c.SASLUsername == "" {
			bad(EnvSASLUsername, "is required when kafka.sasl is set")
		}
		if c.SASLPassword == "" {
			bad(EnvSASLPassword, "is required when kafka.sasl is set")
		}
	}
	if c.Kafka.TLS != nil && (c.Kafka.TLS.CertFile == "") != (c.Kafka.TLS.KeyFile == "") {
		bad("kafka.tls", "certFile and keyFile must be set together")
	}
	if c.DeadLetter.Topic == "" {
		bad("deadLetter.topic", "is required")
	} else if c.DeadLetter.Topic == c.Kafka.Topic {
		bad("deadLetter.topic", "must differ from kafka.topic %q", c.Kafka.Topic)
	}
	if c.Retry.MaxAttempts < 0 {
		bad("retry.maxAttempts", "must be >= 0 (0 retries until it succeeds), got %d", c.Retry.MaxAttempts)
	}
	for _, class := range sortedClasses(c.ErrorPolicy) {
		field := "errorPolicy." + string(class)
		switch action := c.ErrorPolicy[class]; {
		case !slices.Contains(ErrorActions, action):
			bad(field, "%q must be one of %v", action, ErrorActions)
		case slices.Contains(TransientClasses, class):
			bad(field, "%s is transient and always retried; a policy cannot change that", class)
		case action == ActionRetry && class == ClassRetriesExhausted:
			bad(field, "RetriesExhausted cannot be retried again; deadLetter or skip")
		case action == ActionRetry && c.Retry.MaxAttempts == 0:
			bad(field, "retry with retry.maxAttempts 0 would retry a message that can never succeed forever, blocking its partition; set retry.maxAttempts")
		}
	}
	if c.Retry.InitialBackoff.Duration <= 0 {
		bad("retry.initialBackoff", "must be positive")
	}
	if c.Retry.MaxBackoff.Duration < c.Retry.InitialBackoff.Duration {
		bad("retry.maxBackoff", "%s must be >= retry.initialBackoff %s", c.Retry.MaxBackoff, c.Retry.InitialBackoff)
	}
	switch c.Database.Driver {
	case DriverPostgres, DriverMySQL, DriverSQLite:
	default:
		bad("database.driver", "%q must be %s, %s or %s", c.Database.Driver, DriverPostgres, DriverMySQL, DriverSQLite)
	}
	switch n := c.Database.MaxConnections; {
	case n < 0 || n > maxDatabaseConnections:
		bad("database.maxConnections", "must be between 1 and %d, got %d", maxDatabaseConnections, n)
	case n > 1 && c.Database.Driver == DriverSQLite:
		bad("database.maxConnections", "%d: SQLite has one connection, which the partitions share", n)
	}
	if c.DatabaseDSN == "" {
		if c.Database.DSNFile != "" {
			bad("database.dsnFile", "%s is empty (the database DSN)", c.Database.DSNFile)
		} else {
			bad(EnvDatabaseDSN, "is required (the database DSN)")
		}
	}
	if c.SentryEnabled && c.SentryDSN == "" {
		bad(EnvSentryDSN, "is required when sentryEnabled is true")
	}
	if c.Batch.MaxMessages < 1 {
		bad("batch.maxMessages", "must be >= 1, got %d", c.Batch.MaxMessages)
	}
	if c.Batch.MaxWait.Duration < 0 {
		bad("batch.maxWait", "must not be negative, got %s", c.Batch.MaxWait.Duration)
	}
	if t := c.Database.OffsetTable; t != "" && !offsetstore.ValidTable(t) {
		bad("database.offsetTable", "%q must be a plain SQL identifier (letters, digits, _; at most 63)", t)
	}
	return errors.Join(errs...)
}

// Marshal writes the non-secret configuration as YAML, the ConfigMap's content.
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// Parse reads a configuration file's content strictly: an unknown field is an error.
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("parse consumer config: %w", err)
	}
	return &c, nil
}

// Load reads the configuration file at path, takes the secret values from the files it
// names and otherwise from getenv (os.Getenv when nil), applies defaults and validates.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read consumer config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.FromEnv(getenv)
	if err := c.FromFiles(); err != nil {
		return nil, fmt.Errorf("consumer config %s: %w", path, err)
	}
	c.Default()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid consumer config %s:\n%w", path, err)
	}
	return c, nil
}

// FromEnv takes the secret values from getenv (os.Getenv when nil).
func (c *Config) FromEnv(getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c.DatabaseDSN = getenv(EnvDatabaseDSN)
	c.SASLUsername = getenv(EnvSASLUsername)
	c.SASLPassword = getenv(EnvSASLPassword)
	c.SentryDSN = getenv(EnvSentryDSN)
}

// FromFiles reads the secret values from the files the configuration names; a value whose
// file is not named keeps what FromEnv found. Trailing line breaks are dropped, as a Secret
// made with `kubectl create secret --from-file` often has one.
func (c *Config) FromFiles() error {
	for _, f := range []struct {
		field, path string
		into        *string
	}{
		{"database.dsnFile", c.Database.DSNFile, &c.DatabaseDSN},
		{"kafka.sasl.usernameFile", c.saslFile(func(s *SASLConfig) string { return s.UsernameFile }), &c.SASLUsername},
		{"kafka.sasl.passwordFile", c.saslFile(func(s *SASLConfig) string { return s.PasswordFile }), &c.SASLPassword},
		{"sentryDSNFile", c.SentryDSNFile, &c.SentryDSN},
	} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			// The error names the path only, never the content.
			return fmt.Errorf("%s: %w", f.field, err)
		}
		*f.into = strings.TrimRight(string(b), "\r\n")
	}
	return nil
}

func (c *Config) saslFile(get func(*SASLConfig) string) string {
	if c.Kafka.SASL == nil {
		return ""
	}
	return get(c.Kafka.SASL)
}

// SecretFiles are the files the consumer reads secret values or key material from: the
// ones FromFiles reads and the TLS files. A change to any of them (a rotated Secret, which
// the kubelet writes into the mounted volume) needs the consumer to start again.
func (c *Config) SecretFiles() []string {
	var files []string
	add := func(p string) {
		if p != "" {
			files = append(files, p)
		}
	}
	add(c.Database.DSNFile)
	if s := c.Kafka.SASL; s != nil {
		add(s.UsernameFile)
		add(s.PasswordFile)
	}
	add(c.SentryDSNFile)
	if t := c.Kafka.TLS; t != nil {
		add(t.CAFile)
		add(t.CertFile)
		add(t.KeyFile)
	}
	return files
}
