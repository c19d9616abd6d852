package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// Benchmark knobs for experiments (the defaults are what `make bench` reports):
// BENCH_BATCH sets batch.maxMessages (default 500); BENCH_FILLFACTOR sets the PostgreSQL
// products table's fillfactor (default 100), which lets updates stay on their page (HOT).
const (
	benchPartitions = 4
	benchProducts   = 1000
)

// fillTopic produces n records round-robin over the partitions; value(i) gives the payload.
func fillTopic(b *testing.B, brokers []string, topic string, n int, value func(i int) string) {
	b.Helper()
	sc := sarama.NewConfig()
	sc.Producer.RequiredAcks = sarama.WaitForLocal
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Flush.Messages = 1000
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	p, err := sarama.NewAsyncProducer(brokers, sc)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var first error
		for i := 0; i < n; i++ {
			select {
			case <-p.Successes():
			case e := <-p.Errors():
				if first == nil {
					first = e
				}
			}
		}
		done <- first
	}()
	for i := 0; i < n; i++ {
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: int32(i % benchPartitions), Value: sarama.StringEncoder(value(i))}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	_ = p.Close()
}

// countHandler counts messages and marks them: sarama with no work, the ceiling.
type countHandler struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
	once   sync.Once
}

func (h *countHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *countHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *countHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			s.MarkMessage(m, "")
			if h.n.Add(1) == h.target {
				h.once.Do(func() { close(h.done) })
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// BenchmarkRawSaramaConsume: a sarama consumer group reading from kfake with no work per
// message, the ceiling the pipeline is compared with.
func BenchmarkRawSaramaConsume(b *testing.B) {
	topic := consumertest.UniqueName("raw")
	brokers := consumertest.Kfake(b, benchPartitions, topic)
	fillTopic(b, brokers, topic, b.N, func(i int) string {
		return fmt.Sprintf(`{"product_code": "P-%05d", "inventory_count": %d}`, i%benchProducts, i)
	})
	cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, "unused")
	sc, err := consumer.SaramaConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	group, err := sarama.NewConsumerGroup(brokers, cfg.Kafka.ConsumerGroup, sc)
	if err != nil {
		b.Fatal(err)
	}
	h := &countHandler{target: int64(b.N), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, h); err != nil {
				return
			}
		}
	}()
	select {
	case <-h.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d", h.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	_ = group.Close()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// benchPipeline runs the real consumer (consumer.New + Run, the inventory handler) over
// b.N pre-produced messages and reports messages per second from the start of Run to the
// last outcome (joining the group included).
func benchPipeline(b *testing.B, driver, dsn string, valid bool) {
	topic := consumertest.UniqueName("bench")
	dlq := topic + ".dlq"
	brokers := consumertest.Kfake(b, benchPartitions, topic, dlq)
	db, err := consumer.OpenDatabase(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { sqlDB, _ := db.DB(); _ = sqlDB.Close() }()
	ctx := context.Background()
	if err := inventory.Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	products := make([]inventory.Product, benchProducts)
	for i := range products {
		products[i] = inventory.Product{Code: fmt.Sprintf("P-%05d", i), Name: "bench"}
	}
	if v := os.Getenv("BENCH_FILLFACTOR"); v != "" && driver == consumer.DriverPostgres {
		if err := db.Exec("ALTER TABLE products SET (fillfactor = " + v + ")").Error; err != nil {
			b.Fatal(err)
		}
	}
	if err := inventory.Insert(ctx, db, products); err != nil {
		b.Fatal(err)
	}
	fillTopic(b, brokers, topic, b.N, func(i int) string {
		if valid {
			return fmt.Sprintf(`{"product_code": "P-%05d", "inventory_count": %d}`, i%benchProducts, i)
		}
		return fmt.Sprintf(`{"product_code": "P-%05d", "inventory_count": -%d}`, i%benchProducts, i+1)
	})
	cfg := consumertest.Config(brokers, topic, dlq, driver, dsn)
	if v := os.Getenv("BENCH_BATCH"); v != "" {
		cfg.Batch.MaxMessages, _ = strconv.Atoi(v)
	}
	mon := consumer.NewMonitor()
	var n atomic.Int64
	var wrong atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	want := consumer.EventProcessed
	if !valid {
		want = consumer.EventDeadLettered
	}
	mon.Subscribe(func(e consumer.Event) {
		if e.Type != want {
			wrong.Add(1)
		}
		if n.Add(1) == int64(b.N) {
			once.Do(func() { close(done) })
		}
	}, consumer.EventProcessed, consumer.EventDeadLettered)
	c, err := consumer.New(cfg, consumer.WithMonitor(mon), consumer.WithoutHTTP(),
		consumer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	runTimed(b, c, done, &n)
	if wrong.Load() != 0 {
		b.Fatalf("%d messages had the wrong outcome", wrong.Load())
	}
}

// runTimed runs the consumer from the timer's reset until done closes (n counts the
// outcomes so far, for the message on a timeout), stops it, and reports msgs/s.
func runTimed(b *testing.B, c *consumer.Consumer, done <-chan struct{}, n *atomic.Int64) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-done:
	case err := <-errc:
		b.Fatalf("consumer stopped: %v", err)
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d outcomes", n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkPipelineSQLite: valid updates through the full pipeline into SQLite.
func BenchmarkPipelineSQLite(b *testing.B) {
	benchPipeline(b, consumer.DriverSQLite, consumertest.SQLiteDSN(b), true)
}

// BenchmarkPipelinePostgreSQL: valid updates through the full pipeline into PostgreSQL
// (KAFKASUB_TEST_POSTGRES_DSN).
func BenchmarkPipelinePostgreSQL(b *testing.B) {
	benchPipeline(b, consumer.DriverPostgres, consumertest.PostgresDSN(b), true)
}

// BenchmarkPipelineAllInvalidToDeadLetter: every message fails validation and goes to the
// dead-letter topic (acks=all, idempotent producer).
func BenchmarkPipelineAllInvalidToDeadLetter(b *testing.B) {
	benchPipeline(b, consumer.DriverSQLite, consumertest.SQLiteDSN(b), false)
}

// BenchmarkPipelineWithoutDatabase: the runtime's own ceiling: the real consumer with a
// handler that decodes and validates (inventory.Decode, inventory.Validate) and writes
// nothing, so the difference to BenchmarkPipelinePostgreSQL is the database's share.
func BenchmarkPipelineWithoutDatabase(b *testing.B) {
	topic := consumertest.UniqueName("bench")
	dlq := topic + ".dlq"
	brokers := consumertest.Kfake(b, benchPartitions, topic, dlq)
	fillTopic(b, brokers, topic, b.N, func(i int) string {
		return fmt.Sprintf(`{"product_code": "P-%05d", "inventory_count": %d}`, i%benchProducts, i)
	})
	cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, "unused")
	mon := consumer.NewMonitor()
	var n atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	mon.Subscribe(func(e consumer.Event) {
		if n.Add(1) == int64(b.N) {
			once.Do(func() { close(done) })
		}
	}, consumer.EventProcessed, consumer.EventDeadLettered)
	h := consumer.HandlerFunc(func(ctx context.Context, _ *gorm.DB, m *consumer.Message) error {
		u, err := inventory.Decode(m.Value)
		if err != nil {
			return err
		}
		_, err = inventory.Validate(u, func(string) bool { return true })
		return err
	})
	db, err := consumer.OpenDatabase(consumer.DriverSQLite, consumertest.SQLiteDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { sqlDB, _ := db.DB(); _ = sqlDB.Close() }()
	c, err := consumer.New(cfg, consumer.WithMonitor(mon), consumer.WithoutHTTP(), consumer.WithHandler(h),
		consumer.WithDatabase(db), consumer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	runTimed(b, c, done, &n)
}
