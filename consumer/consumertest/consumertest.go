// Package consumertest gives tests real servers: an in-process Kafka-protocol broker
// (franz-go's kfake) or the Apache Kafka named by KAFKASUB_TEST_KAFKA_BROKERS; a SQLite
// file per test, or a fresh schema of the PostgreSQL named by KAFKASUB_TEST_POSTGRES_DSN.
// A test that needs a server that was not given skips, naming the variable.
package consumertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
)

// Environment variables that point tests at real servers.
const (
	EnvKafkaBrokers = "KAFKASUB_TEST_KAFKA_BROKERS"
	EnvPostgresDSN  = "KAFKASUB_TEST_POSTGRES_DSN"
)

// UniqueName returns prefix with a random suffix, for topics, groups and schemas.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Kfake starts an in-process broker with the topics (partitions each) and returns its
// address; it stops when the test ends.
func Kfake(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	return KfakeCluster(t, partitions, topics...).ListenAddrs()
}

// KfakeCluster is Kfake returning the cluster, for tests that inject faults with
// ControlKey.
func KfakeCluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(int(partitions))}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// RealKafka returns the brokers of KAFKASUB_TEST_KAFKA_BROKERS after creating the topics
// (partitions each), or skips. Use unique topic names: the broker is shared.
func RealKafka(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	v := os.Getenv(EnvKafkaBrokers)
	if v == "" {
		t.Skipf("no Apache Kafka: set %s=host:port (hack/kafka.sh start prints one)", EnvKafkaBrokers)
	}
	brokers := strings.Split(v, ",")
	CreateTopics(t, brokers, partitions, topics...)
	return brokers
}

// CreateTopics creates topics on brokers (replication factor 1), ignoring ones that exist.
func CreateTopics(t testing.TB, brokers []string, partitions int32, topics ...string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("connect to Kafka %v: %v", brokers, err)
	}
	defer admin.Close()
	for _, topic := range topics {
		err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("create topic %s: %v", topic, err)
		}
	}
}

// RecreateTopic deletes topic on brokers, waits until the brokers have forgotten it, and
// creates it again (a new topic ID, offsets from 0).
func RecreateTopic(t testing.TB, brokers []string, partitions int32, topic string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("connect to Kafka %v: %v", brokers, err)
	}
	defer admin.Close()
	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatalf("delete topic %s: %v", topic, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("create topic %s again: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond) // still being deleted
	}
}

// Producer returns a sync producer (acks=all, manual partitioner: a message goes to its
// Partition field) that is closed when the test ends.
func Producer(t testing.TB, brokers []string) sarama.SyncProducer {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Produce sends values to partition 0 of topic, in order.
func Produce(t testing.TB, p sarama.SyncProducer, topic string, values ...string) {
	t.Helper()
	msgs := make([]*sarama.ProducerMessage, len(values))
	for i, v := range values {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// ReadTopic reads every record of topic (all partitions, from the oldest offset up to the
// high-water marks) until at least want records are there or timeout passes; it returns
// what it read, in partition then offset order.
func ReadTopic(t testing.TB, brokers []string, topic string, want int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := readAll(t, brokers, topic)
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readAll(t testing.TB, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cons.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("offset of %s/%d: %v", topic, p, err)
		}
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("offset of %s/%d: %v", topic, p, err)
		}
		if hwm <= oldest {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, oldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		timeout := time.After(30 * time.Second)
	read:
		for {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				if m.Offset+1 >= hwm {
					break read
				}
			case err := <-pc.Errors():
				t.Fatalf("read %s/%d: %v", topic, p, err)
			case <-timeout:
				t.Fatalf("read %s/%d: no record up to offset %d within 30s", topic, p, hwm)
			}
		}
		_ = pc.Close()
	}
	return out
}

// SQLiteDSN returns the DSN of a new SQLite file in the test's temporary directory.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return "file:" + filepath.Join(t.TempDir(), "test.sqlite3") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"
}

// PostgresDSN returns a DSN of KAFKASUB_TEST_POSTGRES_DSN whose search_path is a fresh
// schema (dropped when the test ends), or skips.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresDSN)
	if base == "" {
		t.Skipf("no PostgreSQL: set %s to a DSN (hack/postgres.sh start prints one)", EnvPostgresDSN)
	}
	schema := UniqueName("kafkasub_test")
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema %s in %s: %v", schema, EnvPostgresDSN, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(base, schema)
}

// WithSearchPath returns the PostgreSQL DSN dsn (URL or key=value form) with search_path.
func WithSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// HostPort returns the host:port of a DSN in URL form.
func HostPort(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("the DSN is not a URL with a host")
	}
	return u.Host, nil
}

// ReplaceHost returns the URL DSN with its host:port replaced.
func ReplaceHost(dsn, hostport string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Host = hostport
	return u.String()
}

// Config returns a consumer configuration for the inventory handler in tests: a unique
// group, fast backoff (50ms..500ms), a short batch wait, endpoints on free ports.
func Config(brokers []string, topic, dlq, driver, dsn string) *consumer.Config {
	cfg := &consumer.Config{
		Subscription: "test/" + topic,
		Handler:      "inventory.product-updates",
		Kafka: consumer.KafkaConfig{
			BootstrapServers: brokers,
			Topic:            topic,
			ConsumerGroup:    UniqueName("group"),
			InitialOffset:    consumer.OffsetEarliest,
		},
		DeadLetter:  consumer.DeadLetterConfig{Topic: dlq},
		Retry:       consumer.RetryConfig{InitialBackoff: consumer.Duration{Duration: 50 * time.Millisecond}, MaxBackoff: consumer.Duration{Duration: 500 * time.Millisecond}},
		Database:    consumer.DatabaseConfig{Driver: driver},
		Batch:       consumer.BatchConfig{MaxWait: consumer.Duration{Duration: 5 * time.Millisecond}},
		HealthAddr:  "127.0.0.1:0",
		MetricsAddr: "127.0.0.1:0",
		DatabaseDSN: dsn,
	}
	cfg.Default()
	return cfg
}

// GroupLag returns how many records of topic the group has not committed: the sum over
// its partitions of the high-water mark minus the committed offset (the whole partition
// when the group committed none).
func GroupLag(t testing.TB, brokers []string, group, topic string) int64 {
	t.Helper()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatalf("offsets of group %s: %v", group, err)
	}
	var lag int64
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("offset of %s/%d: %v", topic, p, err)
		}
		committed := int64(0)
		if b := offsets.GetBlock(topic, p); b != nil && b.Offset > 0 {
			committed = b.Offset
		}
		lag += hwm - committed
	}
	return lag
}

// Database is a kind of database for tests that run on each (SQLite always, PostgreSQL
// when KAFKASUB_TEST_POSTGRES_DSN is given: DSN skips otherwise).
type Database struct {
	Name, Driver string
	DSN          func(testing.TB) string
	// RefuseInventoryAbove1000 is a statement that makes the database refuse an inventory
	// above 1000 in the inventory handler's products table (a trigger, a CHECK).
	RefuseInventoryAbove1000 string
}

// Databases are the kinds of database the runtime supports that tests can start.
var Databases = []Database{
	{"SQLite", consumer.DriverSQLite, SQLiteDSN,
		`CREATE TRIGGER inventory_limit BEFORE UPDATE ON products WHEN NEW.inventory > 1000 BEGIN SELECT RAISE(ABORT, 'inventory above 1000'); END`},
	{"PostgreSQL", consumer.DriverPostgres, PostgresDSN,
		`ALTER TABLE products ADD CONSTRAINT inventory_limit CHECK (inventory <= 1000)`},
}

// OpenDatabase opens the database (consumer.OpenDatabase) and closes it when the test ends.
func OpenDatabase(t testing.TB, driver, dsn string, opts ...consumer.DatabaseOption) *gorm.DB {
	t.Helper()
	db, err := consumer.OpenDatabase(driver, dsn, opts...)
	if err != nil {
		t.Fatalf("open %s database: %v", driver, err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}
