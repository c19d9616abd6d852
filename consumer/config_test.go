package consumer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkasub/kafkasub/consumer"
)

func validConfig() *consumer.Config {
	c := &consumer.Config{
		Subscription: "shop/inventory",
		Handler:      "inventory.product-updates",
		Kafka:        consumer.KafkaConfig{BootstrapServers: []string{"kafka:9092"}, Topic: "updates", ConsumerGroup: "shop"},
		DeadLetter:   consumer.DeadLetterConfig{Topic: "updates.dlq"},
		Database:     consumer.DatabaseConfig{Driver: consumer.DriverPostgres},
		DatabaseDSN:  "postgres://u:p@db/shop",
	}
	c.Default()
	return c
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*consumer.Config)
		field  string
	}{
		{"A missing handler is named", func(c *consumer.Config) { c.Handler = "" }, "handler: is required"},
		{"A bootstrap server without a port is named", func(c *consumer.Config) { c.Kafka.BootstrapServers = []string{"kafka"} }, "kafka.bootstrapServers[0]"},
		{"A dead-letter topic equal to the topic is refused", func(c *consumer.Config) { c.DeadLetter.Topic = "updates" }, "deadLetter.topic: must differ"},
		{"An unknown initial offset is named", func(c *consumer.Config) { c.Kafka.InitialOffset = "middle" }, "kafka.initialOffset"},
		{"An unknown SASL mechanism is named", func(c *consumer.Config) {
			c.Kafka.SASL = &consumer.SASLConfig{Mechanism: "MD5"}
			c.SASLUsername, c.SASLPassword = "u", "p"
		}, "kafka.sasl.mechanism"},
		{"SASL without credentials names the variables", func(c *consumer.Config) { c.Kafka.SASL = &consumer.SASLConfig{Mechanism: consumer.SASLPlain} }, consumer.EnvSASLPassword},
		{"A maximum backoff below the initial one is refused", func(c *consumer.Config) { c.Retry.MaxBackoff.Duration = time.Millisecond }, "retry.maxBackoff"},
		{"A negative attempt count is refused", func(c *consumer.Config) { c.Retry.MaxAttempts = -1 }, "retry.maxAttempts"},
		{"An unknown driver is named", func(c *consumer.Config) { c.Database.Driver = "oracle" }, "database.driver"},
		{"Too many database connections are refused", func(c *consumer.Config) { c.Database.MaxConnections = 5000 }, "database.maxConnections: must be between 1 and 1000"},
		{"More than one SQLite connection is refused", func(c *consumer.Config) {
			c.Database.Driver, c.Database.MaxConnections = consumer.DriverSQLite, 4
		}, "database.maxConnections: 4: SQLite has one connection"},
		{"A missing DSN names its variable", func(c *consumer.Config) { c.DatabaseDSN = "" }, consumer.EnvDatabaseDSN},
		{"Sentry without a DSN names its variable", func(c *consumer.Config) { c.SentryEnabled = true }, consumer.EnvSentryDSN},
		{"An unknown error action is named", func(c *consumer.Config) {
			c.ErrorPolicy = map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassInvalidPayload: "ignore"}
		}, `errorPolicy.InvalidPayload: "ignore" must be one of`},
		{"A policy for a transient class is refused", func(c *consumer.Config) {
			c.ErrorPolicy = map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassDatabaseUnavailable: consumer.ActionSkip}
		}, "errorPolicy.DatabaseUnavailable: DatabaseUnavailable is transient"},
		{"Retrying RetriesExhausted is refused", func(c *consumer.Config) {
			c.Retry.MaxAttempts = 3
			c.ErrorPolicy = map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassRetriesExhausted: consumer.ActionRetry}
		}, "errorPolicy.RetriesExhausted: RetriesExhausted cannot be retried again"},
		{"Retrying a permanent class forever is refused", func(c *consumer.Config) {
			c.ErrorPolicy = map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassValidationFailed: consumer.ActionRetry}
		}, "errorPolicy.ValidationFailed: retry with retry.maxAttempts 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.field)
			}
		})
	}
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("a complete configuration is invalid: %v", err)
	}
	withPolicy := validConfig()
	withPolicy.Retry.MaxAttempts = 5
	withPolicy.ErrorPolicy = map[consumer.ErrorClass]consumer.ErrorAction{
		consumer.ClassUnexpectedAttributes: consumer.ActionSkip, consumer.ClassDatabaseError: consumer.ActionRetry,
		"OrderLocked": consumer.ActionRetry, consumer.ClassRetriesExhausted: consumer.ActionDeadLetter,
	}
	if err := withPolicy.Validate(); err != nil {
		t.Fatalf("a valid error policy is refused: %v", err)
	}
}

func TestConfigFileRoundTripKeepsSecretsOut(t *testing.T) {
	c := validConfig()
	c.SASLPassword, c.SentryDSN = "hunter2", "https://key@sentry.example/1"
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"postgres://u:p@db/shop", "hunter2", "sentry.example"} {
		if strings.Contains(string(data), secret) {
			t.Fatalf("the config file holds a secret %q:\n%s", secret, data)
		}
	}
	path := filepath.Join(t.TempDir(), consumer.ConfigFileName)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{consumer.EnvDatabaseDSN: "postgres://u:p@db/shop"}
	got, err := consumer.Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got.DatabaseDSN != env[consumer.EnvDatabaseDSN] || got.Kafka.Topic != "updates" || got.Retry.InitialBackoff.Duration != time.Second {
		t.Fatalf("loaded %+v, want the file's values, the DSN from the environment and the defaults", got)
	}
}

func TestParseRefusesUnknownFields(t *testing.T) {
	_, err := consumer.Parse([]byte("handler: x\nkafka:\n  topik: updates\n"))
	if err == nil || !strings.Contains(err.Error(), "topik") {
		t.Fatalf("Parse = %v, want an error naming the unknown field topik", err)
	}
}
