package consumer_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// envConsumerProcess makes the test binary run `consumer.Load` + `consumer.Run` on the
// named config file instead of the tests: a real consumer process that a test can kill.
const envConsumerProcess = "KAFKASUB_TEST_CONSUMER_PROCESS_CONFIG"

// Group membership of a consumer process, for tests that kill or freeze members: a
// session timeout (a Go duration; the heartbeat is a fifth of it) and a static group
// instance id (KIP-345: a restarted member takes its place at once instead of waiting
// for the dead one's session to expire).
const (
	envConsumerSessionTimeout = "KAFKASUB_TEST_CONSUMER_SESSION_TIMEOUT"
	envConsumerInstanceID     = "KAFKASUB_TEST_CONSUMER_INSTANCE_ID"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envConsumerProcess); path != "" {
		os.Exit(runConsumerProcess(path))
	}
	os.Exit(m.Run())
}

func runConsumerProcess(path string) int {
	cfg, err := consumer.Load(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	session, err := time.ParseDuration(os.Getenv(envConsumerSessionTimeout))
	if err != nil {
		session = 0
	}
	instance := os.Getenv(envConsumerInstanceID)
	membership := consumer.WithSarama(func(sc *sarama.Config) {
		if session > 0 {
			sc.Consumer.Group.Session.Timeout = session
			sc.Consumer.Group.Heartbeat.Interval = session / 5
		}
		sc.Consumer.Group.InstanceId = instance
	})
	if err := consumer.Run(ctx, cfg, consumer.WithoutHTTP(), consumer.WithLogger(quiet), membership); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestNothingIsLostWhenTheConsumerIsKilledMidStream kills a consumer process (SIGKILL, no
// shutdown, no commit) in the middle of a mixed stream and restarts it: every valid update
// ends applied (the last per product wins, per-partition order), every invalid message is
// in the dead-letter topic, and no valid message is.
func TestNothingIsLostWhenTheConsumerIsKilledMidStream(t *testing.T) {
	nothingLost(t, consumertest.Kfake, consumer.DriverSQLite, consumertest.SQLiteDSN(t))
}

// TestNothingIsLostWithApacheKafkaAndPostgreSQL is the same against the real servers.
func TestNothingIsLostWithApacheKafkaAndPostgreSQL(t *testing.T) {
	dsn := consumertest.PostgresDSN(t)
	consumertest.RealKafka(t, 1) // skips without KAFKASUB_TEST_KAFKA_BROKERS
	nothingLost(t, consumertest.RealKafka, consumer.DriverPostgres, dsn)
}

func nothingLost(t *testing.T, kafka func(testing.TB, int32, ...string) []string, driver, dsn string) {
	const (
		partitions = 3
		products   = 20
		messages   = 6000
	)
	topic := consumertest.UniqueName("stream")
	dlq := topic + ".dlq"
	brokers := kafka(t, partitions, topic, dlq)
	db := consumertest.OpenDatabase(t, driver, dsn)
	ctx := context.Background()
	if err := inventory.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var catalogue []inventory.Product
	for i := range products {
		catalogue = append(catalogue, inventory.Product{Code: fmt.Sprintf("P-%03d", i), Name: "product", Inventory: -1})
	}
	if err := inventory.Insert(ctx, db, catalogue); err != nil {
		t.Fatal(err)
	}

	// A product's updates all go to one partition (by code), so "last wins" is defined.
	partitionOf := func(code string) int32 {
		h := fnv.New32a()
		_, _ = h.Write([]byte(code))
		return int32(h.Sum32() % partitions)
	}
	want := map[string]int64{}
	invalid := map[string]bool{} // "partition/offset" of each invalid message
	valid := map[string]bool{}
	var batch []*sarama.ProducerMessage
	for i := range messages {
		code := catalogue[i%products].Code
		var v string
		ok := i%5 != 3
		if ok {
			v = fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, code, i)
			want[code] = int64(i)
		} else {
			switch (i / 5) % 4 {
			case 0:
				v = fmt.Sprintf(`{"product_code": %q, "inventory_count": -%d}`, code, i)
			case 1:
				v = fmt.Sprintf(`{"product_code": "NO_SUCH_%d", "inventory_count": 1}`, i)
			case 2:
				v = "this is no good"
			case 3:
				v = `{"greeting": "hello"}`
			}
		}
		batch = append(batch, &sarama.ProducerMessage{Topic: topic, Partition: partitionOf(code),
			Key: sarama.StringEncoder(code), Value: sarama.StringEncoder(v), Metadata: ok})
	}
	p := consumertest.Producer(t, brokers)
	for start := 0; start < len(batch); start += 500 {
		end := min(start+500, len(batch))
		if err := p.SendMessages(batch[start:end]); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range batch {
		key := fmt.Sprintf("%d/%d", m.Partition, m.Offset)
		if m.Metadata.(bool) {
			valid[key] = true
		} else {
			invalid[key] = true
		}
	}

	// First run: a separate process with tiny batches, killed once it is under way.
	cfg := consumertest.Config(brokers, topic, dlq, driver, "")
	cfg.Batch.MaxMessages = 3
	cmd := startConsumerProcess(t, cfg, dsn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n := len(consumertest.ReadTopic(t, brokers, dlq, 0, 0)); n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the consumer process dead-lettered nothing within 60s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	atKill := len(consumertest.ReadTopic(t, brokers, dlq, 0, 0))
	if atKill >= len(invalid) {
		t.Fatalf("the first run finished (%d dead letters) before it was killed; the test needs more messages", atKill)
	}
	t.Logf("killed the consumer process with %d of %d invalid messages dead-lettered", atKill, len(invalid))

	// Second run, in process, same group: it must finish the stream.
	cfg2 := *cfg
	cfg2.Batch.MaxMessages = 500
	cfg2.DatabaseDSN = dsn
	startConsumer(t, &cfg2, consumer.WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))))

	deadline = time.Now().Add(120 * time.Second)
	for {
		recs := consumertest.ReadTopic(t, brokers, dlq, 0, 0)
		seen := map[string]bool{}
		for _, r := range recs {
			d, _ := consumer.ParseDeadLetter(consumer.HeadersFromSarama(r.Headers))
			key := fmt.Sprintf("%d/%d", d.OriginalPartition, d.OriginalOffset)
			if valid[key] {
				t.Fatalf("valid message %s (%s) was dead-lettered: %s", key, r.Value, d.ErrorMessage)
			}
			if !invalid[key] {
				t.Fatalf("dead letter %s names no message that was produced", key)
			}
			seen[key] = true
		}
		var got []inventory.Product
		if err := db.Find(&got).Error; err != nil {
			t.Fatal(err)
		}
		applied := 0
		for _, p := range got {
			w, ok := want[p.Code]
			if !ok && p.Inventory != -1 {
				t.Fatalf("product %s had only invalid updates but its inventory is %d", p.Code, p.Inventory)
			}
			if ok && p.Inventory == w {
				applied++
			}
		}
		if len(seen) == len(invalid) && applied == len(want) {
			t.Logf("all %d invalid messages dead-lettered (%d records, duplicates allowed); all %d products at their last update", len(invalid), len(recs), applied)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 120s: %d of %d invalid messages dead-lettered, %d of %d products at their last update", len(seen), len(invalid), applied, len(want))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSIGTERMCommitsAndExitsCleanly: a consumer process that receives SIGTERM after its
// work is done exits 0 with every processed offset committed to the group, so the next
// member of the group starts after them.
func TestSIGTERMCommitsAndExitsCleanly(t *testing.T) {
	topic := consumertest.UniqueName("sigterm")
	dlq := topic + ".dlq"
	brokers := consumertest.Kfake(t, 2, topic, dlq)
	dsn, _ := seededSQLite(t)
	codes := []string{inventory.SeedProducts[0].Code, inventory.SeedProducts[1].Code}
	p := consumertest.Producer(t, brokers)
	var msgs []*sarama.ProducerMessage
	for i := range 200 {
		part := int32(i % 2) // partition 0 updates the first product, partition 1 the second
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part,
			Value: sarama.StringEncoder(fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, codes[part], i))})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, "")
	cmd := startConsumerProcess(t, cfg, dsn)
	db, err := consumer.OpenDatabase(consumer.DriverSQLite, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sqlDB, _ := db.DB(); _ = sqlDB.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for inventoryOf(t, db, codes[0]) != 198 || inventoryOf(t, db, codes[1]) != 199 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the last updates of both partitions were not applied within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the consumer process did not exit cleanly on SIGTERM: %v", err)
	}
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	offsets, err := admin.ListConsumerGroupOffsets(cfg.Kafka.ConsumerGroup, map[string][]int32{topic: {0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	for part := int32(0); part < 2; part++ {
		if b := offsets.GetBlock(topic, part); b == nil || b.Offset != 100 {
			t.Fatalf("partition %d committed offset %+v after SIGTERM, want 100 (everything processed)", part, b)
		}
	}
}

// startConsumerProcess writes cfg to a config file as the operator would and starts this
// test binary as a separate consumer process on it, with dsn and env ("NAME=value") in
// the environment.
func startConsumerProcess(t testing.TB, cfg *consumer.Config, dsn string, env ...string) *exec.Cmd {
	t.Helper()
	data, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), consumer.ConfigFileName)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envConsumerProcess+"="+path, consumer.EnvDatabaseDSN+"="+dsn)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}
