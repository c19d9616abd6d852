package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// Tests against servers given in the environment: PostgreSQL (KAFKASUB_TEST_POSTGRES_DSN)
// and Apache Kafka (KAFKASUB_TEST_KAFKA_BROKERS). Each skips, naming its variable, without.

func TestDBMigrateSeedAndProductsOnPostgreSQL(t *testing.T) {
	base := os.Getenv("KAFKASUB_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("set KAFKASUB_TEST_POSTGRES_DSN (e.g. $(hack/postgres.sh start)) to run db migrate/seed against PostgreSQL")
	}
	dsn := freshPostgresDatabase(t, base)

	// The DSN goes in through the environment, as the help recommends for one with a password.
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runKafkasubEnv(t, []string{consumer.EnvDatabaseDSN + "=" + dsn}, args...)
	}
	out, errOut, code := run("db", "seed", "--driver", "postgres")
	if code == 0 || !strings.Contains(errOut, "has no products table; run `kafkasub db migrate` first") {
		t.Errorf("seed before migrate: exit %d, stderr %q", code, errOut)
	}
	for i := 0; i < 2; i++ { // migrating twice is harmless
		out, errOut, code = run("db", "migrate", "--driver", "postgres")
		if code != 0 || !strings.Contains(out, "Migrated the postgres database") {
			t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
		}
	}
	out, errOut, code = run("db", "seed", "--driver", "postgres")
	if code != 0 || !strings.Contains(out, inventory.SeedProducts[0].Code) {
		t.Fatalf("seed: exit %d\n%s%s", code, out, errOut)
	}

	db, err := consumer.OpenDatabase(consumer.DriverPostgres, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer closeGorm(db)
	if err := db.Model(&inventory.Product{}).Where("code = ?", inventory.SeedProducts[0].Code).Update("inventory", 99).Error; err != nil {
		t.Fatal(err)
	}
	if _, errOut, code = run("db", "seed", "--driver", "postgres"); code != 0 {
		t.Fatalf("second seed: %s", errOut)
	}
	out, errOut, code = run("db", "products", "--driver", "postgres", "-o", "json")
	if code != 0 {
		t.Fatalf("products: %s", errOut)
	}
	var products []productJSON
	if err := json.Unmarshal([]byte(out), &products); err != nil {
		t.Fatalf("products printed %s: %v", out, err)
	}
	if len(products) != len(inventory.SeedProducts) {
		t.Fatalf("got %d products, want %d (a second seed adds none)", len(products), len(inventory.SeedProducts))
	}
	for i, p := range products {
		want := inventory.SeedProducts[i].Inventory
		if i == 0 {
			want = 99 // a second seed leaves existing products alone
		}
		if p.Code != inventory.SeedProducts[i].Code || p.Inventory != want {
			t.Errorf("product %d is %s with %d, want %s with %d", i, p.Code, p.Inventory, inventory.SeedProducts[i].Code, want)
		}
	}
}

// freshPostgresDatabase creates a database of its own for the test (others share the
// given one) and drops it at the end; it returns its DSN.
func freshPostgresDatabase(t *testing.T, base string) string {
	t.Helper()
	admin, err := consumer.OpenDatabase(consumer.DriverPostgres, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeGorm(admin) })
	name := fmt.Sprintf("kafkasub_cli_%d", time.Now().UnixNano())
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("KAFKASUB_TEST_POSTGRES_DSN is not a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestProduceDLQListAndReplayOnApacheKafka(t *testing.T) {
	brokers := os.Getenv("KAFKASUB_TEST_KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("set KAFKASUB_TEST_KAFKA_BROKERS (e.g. $(hack/kafka.sh start)) to run produce and dlq against Apache Kafka")
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	topic, dlq := "cli-orders-"+suffix, "cli-orders-"+suffix+".dlq"
	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	admin, err := sarama.NewClusterAdmin(strings.Split(brokers, ","), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, name := range []string{topic, dlq} {
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
		defer func() { _ = admin.DeleteTopic(name) }()
	}

	// produce reaches a real broker.
	out := mustKafkasub(t, "produce", "--brokers", brokers, "--topic", topic, "--example", ExampleUnknownCode)
	if !strings.Contains(out, "Sent ") {
		t.Fatalf("produce printed %q", out)
	}

	// Two dead letters as the runtime writes them: the original record plus its reason headers.
	producer, err := sarama.NewSyncProducer(strings.Split(brokers, ","), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	letters := []struct {
		partition int32
		key       string
		value     string
		class     consumer.ErrorClass
		msg       string
	}{
		{2, "NO_SUCH_CODE", `{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`, consumer.ClassValidationFailed, "Product code NO_SUCH_CODE does not exist"},
		{1, "", "this is no good", consumer.ClassInvalidPayload, "payload is not a JSON object"},
	}
	for i, l := range letters {
		d := consumer.DeadLetter{OriginalTopic: topic, OriginalPartition: l.partition, OriginalOffset: int64(10 + i),
			OriginalTimestamp: time.Now(), ConsumerGroup: "g", Subscription: "ns/s", ErrorClass: l.class, ErrorMessage: l.msg, Attempts: 1}
		headers := append([]consumer.Header{{Key: "trace-id", Value: []byte(fmt.Sprint(i))}}, d.Headers()...)
		m := &sarama.ProducerMessage{Topic: dlq, Partition: 0, Value: sarama.StringEncoder(l.value), Headers: consumer.HeadersToSarama(headers)}
		if l.key != "" {
			m.Key = sarama.StringEncoder(l.key)
		}
		if _, _, err := producer.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}

	var recs []deadLetterRecord
	if err := json.Unmarshal([]byte(mustKafkasub(t, "dlq", "list", "--brokers", brokers, "--topic", dlq, "-o", "json")), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ErrorClass != string(consumer.ClassValidationFailed) || recs[0].Original.Partition != 2 ||
		recs[1].ErrorClass != string(consumer.ClassInvalidPayload) || recs[1].Key != nil || recs[1].Value != "this is no good" {
		t.Fatalf("dlq list read %+v", recs)
	}

	out = mustKafkasub(t, "dlq", "replay", "--brokers", brokers, "--topic", dlq, "--class", "ValidationFailed", "-o", "json")
	var done []replayed
	if err := json.Unmarshal([]byte(out), &done); err != nil || len(done) != 1 {
		t.Fatalf("replay printed %s (%v)", out, err)
	}
	if done[0].To.Topic != topic || done[0].To.Partition != 2 || done[0].To.Offset < 0 {
		t.Errorf("replayed to %+v, want %s partition 2 (its original partition)", done[0].To, topic)
	}

	// The replayed record on the original topic: original key, value and headers, the link back.
	kf := kafkaFlags{brokers: strings.Split(brokers, ","), timeout: 10 * time.Second}
	client, err := kf.client("test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sel := selection{partitions: []int32{2}}
	back, err := readTopic(client, topic, &sel, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var replays []deadLetterRecord // what produce sent may share the partition
	for _, r := range back {
		if r.ReplayedFrom != "" {
			replays = append(replays, r)
		}
	}
	back = replays
	if len(back) != 1 || back[0].Key == nil || *back[0].Key != "NO_SUCH_CODE" || back[0].Value != letters[0].value ||
		back[0].ReplayedFrom != dlq+"/0/0" || len(back[0].Headers) != 2 || back[0].Headers[0] != (jsonHeader{"trace-id", "0"}) {
		t.Errorf("the replayed record reads %+v", back)
	}
	if after, err := readTopic(client, dlq, &selection{}, 10*time.Second); err != nil || len(after) != 2 {
		t.Errorf("the dead-letter topic holds %d records after the replay (%v), want the same 2", len(after), err)
	}
}

func closeGorm(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}
