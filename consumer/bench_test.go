package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
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

// The benchmarks `make bench` reports, each comparable across commits:
//
//	BenchmarkRawConsume          sarama reading and marking, no work: the Kafka ceiling
//	BenchmarkPipelinePostgreSQL  valid updates through the whole pipeline into PostgreSQL
//	BenchmarkPostgreSQLCeiling   the same batches applied with the repository's statements
//	                             directly, one goroutine per partition, no Kafka: the
//	                             database's ceiling on this machine
//	BenchmarkPipelineSQLite      BenchmarkPipelinePostgreSQL into SQLite
//	BenchmarkDeadLetter          every message invalid: the dead-letter path
//	BenchmarkLatencyPostgreSQL   produce-to-commit latency at a steady 1,000 msgs/s
//
// The catalogue has 100,000 products keyed over 4 partitions, and the updates visit them
// in a scattered order, so the database works on more than a cache-hot page or two. The
// broker is Apache Kafka when KAFKASUB_TEST_KAFKA_BROKERS is set, else the in-process
// kfake. BENCH_BATCH sets batch.maxMessages (default 500).
const (
	benchPartitions = 4
	benchProducts   = 100_000
)

// benchProduct is the product the i-th message updates: a walk that visits every product
// once per 100,000 messages, in a scattered order.
func benchProduct(i int) int { return (i * 48271) % benchProducts }

func benchCode(p int) string { return fmt.Sprintf("P-%06d", p) }

// benchPartition is the partition of product p's messages (its key's partition).
func benchPartition(p int) int32 { return int32(p % benchPartitions) }

func benchUpdate(i int, valid bool) string {
	count := i
	if !valid {
		count = -i - 1
	}
	return fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, benchCode(benchProduct(i)), count)
}

// benchBrokers returns Apache Kafka's brokers (KAFKASUB_TEST_KAFKA_BROKERS) with the topics
// created, or an in-process kfake.
func benchBrokers(b *testing.B, topics ...string) []string {
	b.Helper()
	if os.Getenv(consumertest.EnvKafkaBrokers) != "" {
		return consumertest.RealKafka(b, benchPartitions, topics...)
	}
	return consumertest.Kfake(b, benchPartitions, topics...)
}

// benchCatalogue opens the database with the benchmark's products.
func benchCatalogue(b *testing.B, driver, dsn string) *gorm.DB {
	b.Helper()
	db := consumertest.OpenDatabase(b, driver, dsn)
	ctx := context.Background()
	if err := inventory.Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	products := make([]inventory.Product, benchProducts)
	for i := range products {
		products[i] = inventory.Product{Code: benchCode(i), Name: "bench"}
	}
	// Chunks of 100: the SQLite driver binds a statement's arguments in quadratic time.
	for start := 0; start < len(products); start += 100 {
		if err := inventory.Insert(ctx, db, products[start:min(start+100, len(products))]); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// fillTopic produces the messages 0..n-1 to their products' partitions, keyed by code.
func fillTopic(b *testing.B, brokers []string, topic string, n int, valid bool) {
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
		for range n {
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
	for i := range n {
		code := benchCode(benchProduct(i))
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: benchPartition(benchProduct(i)),
			Key: sarama.StringEncoder(code), Value: sarama.StringEncoder(benchUpdate(i, valid))}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	_ = p.Close()
}

// benchCount counts a benchmark's outcomes up to b.N and notes when the first came: the
// rates are measured from the first outcome to the last, so connecting and joining the
// group (seconds on a busy machine, the same for 1 message or 1 million) do not count.
type benchCount struct {
	target int64
	first  atomic.Int64 // UnixNano of the first outcome
	count  atomic.Int64
	done   chan struct{}
	once   sync.Once
}

func newBenchCount(b *testing.B) *benchCount {
	return &benchCount{target: int64(b.N), done: make(chan struct{})}
}

func (c *benchCount) add() {
	n := c.count.Add(1)
	if n == 1 {
		c.first.Store(time.Now().UnixNano())
	}
	if n == c.target {
		c.once.Do(func() { close(c.done) })
	}
}

// wait waits for the last outcome and reports msgs/s over the outcomes after the first.
func (c *benchCount) wait(b *testing.B, timeout time.Duration, failed <-chan error) {
	b.Helper()
	select {
	case <-c.done:
	case err := <-failed:
		b.Fatalf("consumer stopped: %v", err)
	case <-time.After(timeout):
		b.Fatalf("%d of %d outcomes", c.count.Load(), b.N)
	}
	elapsed := time.Since(time.Unix(0, c.first.Load()))
	b.StopTimer()
	if b.N > 1 {
		b.ReportMetric(float64(b.N-1)/elapsed.Seconds(), "msgs/s")
	}
}

// countHandler counts messages and marks them: sarama with no work, the ceiling.
type countHandler struct{ *benchCount }

func (h countHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h countHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h countHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			s.MarkMessage(m, "")
			h.add()
		case <-s.Context().Done():
			return nil
		}
	}
}

// BenchmarkRawConsume: a sarama consumer group with the runtime's settings reading and
// marking every message, no work: the Kafka ceiling the pipeline is compared with.
func BenchmarkRawConsume(b *testing.B) {
	topic := consumertest.UniqueName("raw")
	brokers := benchBrokers(b, topic)
	fillTopic(b, brokers, topic, b.N, true)
	cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, "unused")
	sc, err := consumer.SaramaConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	group, err := sarama.NewConsumerGroup(brokers, cfg.Kafka.ConsumerGroup, sc)
	if err != nil {
		b.Fatal(err)
	}
	h := countHandler{newBenchCount(b)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, h); err != nil {
				return
			}
		}
	}()
	h.wait(b, 5*time.Minute, nil)
	cancel()
	_ = group.Close()
}

// benchConfig is the consumer configuration of a benchmark: natural batching (no wait).
func benchConfig(brokers []string, topic, driver, dsn string) *consumer.Config {
	cfg := consumertest.Config(brokers, topic, topic+".dlq", driver, dsn)
	cfg.Batch.MaxWait.Duration = 0
	if v := os.Getenv("BENCH_BATCH"); v != "" {
		cfg.Batch.MaxMessages, _ = strconv.Atoi(v)
	}
	return cfg
}

// benchPipeline runs the real consumer (consumer.New + Run, the inventory handler) over
// b.N pre-produced messages and reports messages per second (benchCount).
func benchPipeline(b *testing.B, driver, dsn string, valid bool) {
	topic := consumertest.UniqueName("bench")
	brokers := benchBrokers(b, topic, topic+".dlq")
	benchCatalogue(b, driver, dsn)
	fillTopic(b, brokers, topic, b.N, valid)
	mon := consumer.NewMonitor()
	var wrong atomic.Int64
	count := newBenchCount(b)
	want := consumer.EventProcessed
	if !valid {
		want = consumer.EventDeadLettered
	}
	mon.Subscribe(func(e consumer.Event) {
		if e.Type != want {
			wrong.Add(1)
		}
		count.add()
	}, consumer.EventProcessed, consumer.EventDeadLettered)
	c, err := consumer.New(benchConfig(brokers, topic, driver, dsn), consumer.WithMonitor(mon), consumer.WithoutHTTP(),
		consumer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	runTimed(b, c, count)
	if wrong.Load() != 0 {
		b.Fatalf("%d messages had the wrong outcome", wrong.Load())
	}
}

// runTimed runs the consumer until count has every outcome, stops it, and reports msgs/s.
func runTimed(b *testing.B, c *consumer.Consumer, count *benchCount) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	b.ResetTimer()
	go func() { errc <- c.Run(ctx) }()
	count.wait(b, 10*time.Minute, errc)
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPipelinePostgreSQL: valid updates through the whole pipeline into PostgreSQL
// (KAFKASUB_TEST_POSTGRES_DSN).
func BenchmarkPipelinePostgreSQL(b *testing.B) {
	benchPipeline(b, consumer.DriverPostgres, consumertest.PostgresDSN(b), true)
}

// BenchmarkPipelineSQLite: valid updates through the whole pipeline into SQLite.
func BenchmarkPipelineSQLite(b *testing.B) {
	benchPipeline(b, consumer.DriverSQLite, consumertest.SQLiteDSN(b), true)
}

// BenchmarkDeadLetter: every message fails validation and goes to the dead-letter topic
// (acks=all, idempotent producer), over four partitions.
func BenchmarkDeadLetter(b *testing.B) {
	benchPipeline(b, consumer.DriverSQLite, consumertest.SQLiteDSN(b), false)
}

// BenchmarkPostgreSQLCeiling applies the batches the pipeline would (the same messages,
// split by partition into batches of batch.maxMessages) with the repository's statement
// directly: per batch one transaction with the update a batch of valid updates is (the
// service's one statement), one goroutine per partition as the claims are. No Kafka, no
// decoding, no offset store.
func BenchmarkPostgreSQLCeiling(b *testing.B) {
	dsn := consumertest.PostgresDSN(b)
	db := benchCatalogue(b, consumer.DriverPostgres, dsn)
	maxBatch := benchConfig(nil, "t", consumer.DriverPostgres, dsn).Batch.MaxMessages
	var batches [benchPartitions][][]inventory.Change
	for i := range b.N {
		p := benchProduct(i)
		part := &batches[benchPartition(p)]
		if len(*part) == 0 || len((*part)[len(*part)-1]) == maxBatch {
			*part = append(*part, make([]inventory.Change, 0, maxBatch))
		}
		last := &(*part)[len(*part)-1]
		*last = append(*last, inventory.Change{Code: benchCode(p), Inventory: int64(i)})
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, benchPartitions)
	for _, part := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, batch := range part {
				err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					_, err := inventory.NewRepository(tx).SetInventories(ctx, batch, time.Now())
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkLatencyPostgreSQL produces valid updates at a steady 1,000 msgs/s (one per
// op) to a consumer that is caught up, and reports the median and 99th percentile of the
// time from handing a message to the producer to its outcome (committed to the database
// and marked).
func BenchmarkLatencyPostgreSQL(b *testing.B) {
	dsn := consumertest.PostgresDSN(b)
	topic := consumertest.UniqueName("latency")
	brokers := benchBrokers(b, topic, topic+".dlq")
	benchCatalogue(b, consumer.DriverPostgres, dsn)

	type at struct {
		partition int32
		offset    int64
	}
	var mu sync.Mutex
	done := map[at]time.Time{}
	joined := make(chan struct{})
	var joinOnce sync.Once
	mon := consumer.NewMonitor()
	mon.Subscribe(func(e consumer.Event) {
		if e.Type == consumer.EventGroupJoined {
			joinOnce.Do(func() { close(joined) })
			return
		}
		mu.Lock()
		done[at{e.Partition, e.Offset}] = e.Time
		mu.Unlock()
	}, consumer.EventGroupJoined, consumer.EventProcessed, consumer.EventDeadLettered)
	c, err := consumer.New(benchConfig(brokers, topic, consumer.DriverPostgres, dsn), consumer.WithMonitor(mon), consumer.WithoutHTTP(),
		consumer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			b.Error(err)
		}
	}()
	select {
	case <-joined:
	case <-time.After(time.Minute):
		b.Fatal("the consumer did not join its group within a minute")
	}

	sc := sarama.NewConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewAsyncProducer(brokers, sc)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	sent := make([]time.Time, b.N)
	where := make([]at, b.N)
	acked := make(chan error, 1)
	go func() {
		var first error
		for range benchPartitions + b.N {
			select {
			case m := <-p.Successes():
				if i := m.Metadata.(int); i >= 0 {
					where[i] = at{m.Partition, m.Offset}
				}
			case e := <-p.Errors():
				if first == nil {
					first = e
				}
			}
		}
		acked <- first
	}()
	// One message per partition first, timed out: the consumer's partitions start fetching
	// some 100 ms after the group is joined (sarama gathers new partitions for that long),
	// which is no latency of a caught-up consumer.
	for part := range benchPartitions {
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: benchPartition(part), Metadata: -1,
			Key: sarama.StringEncoder(benchCode(part)), Value: sarama.StringEncoder(fmt.Sprintf(`{"product_code": %q, "inventory_count": 0}`, benchCode(part)))}
	}
	for warm := time.Now(); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(done)
		mu.Unlock()
		if n == benchPartitions {
			break
		}
		if time.Since(warm) > time.Minute {
			b.Fatalf("%d of %d warm-up messages had an outcome within a minute", n, benchPartitions)
		}
	}
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	for i := range b.N {
		<-tick.C
		sent[i] = time.Now()
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: benchPartition(benchProduct(i)), Metadata: i,
			Key: sarama.StringEncoder(benchCode(benchProduct(i))), Value: sarama.StringEncoder(benchUpdate(i, true))}
	}
	tick.Stop()
	if err := <-acked; err != nil {
		b.Fatal(err)
	}
	latencies := make([]time.Duration, 0, b.N)
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < b.N; {
		mu.Lock()
		t, ok := done[where[i]]
		mu.Unlock()
		if ok {
			latencies = append(latencies, t.Sub(sent[i]))
			i++
			continue
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d messages had an outcome within a minute of the last send", i, b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(latencies)
	ms := func(q float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(q*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkPipelineWithoutDatabase: the runtime's own ceiling: the real consumer with a
// handler that decodes and validates (inventory.Decode, inventory.Validate) and writes
// nothing, so the difference to BenchmarkPipelinePostgreSQL is the database's share.
func BenchmarkPipelineWithoutDatabase(b *testing.B) {
	topic := consumertest.UniqueName("bench")
	brokers := benchBrokers(b, topic, topic+".dlq")
	fillTopic(b, brokers, topic, b.N, true)
	mon := consumer.NewMonitor()
	count := newBenchCount(b)
	mon.Subscribe(func(consumer.Event) { count.add() }, consumer.EventProcessed, consumer.EventDeadLettered)
	h := consumer.HandlerFunc(func(ctx context.Context, _ *gorm.DB, m *consumer.Message) error {
		u, err := inventory.Decode(m.Value)
		if err != nil {
			return err
		}
		_, err = inventory.Validate(u, func(code string) bool { return strings.HasPrefix(code, "P-") })
		return err
	})
	db := consumertest.OpenDatabase(b, consumer.DriverSQLite, consumertest.SQLiteDSN(b))
	c, err := consumer.New(benchConfig(brokers, topic, consumer.DriverSQLite, "unused"), consumer.WithMonitor(mon),
		consumer.WithoutHTTP(), consumer.WithHandler(h), consumer.WithDatabase(db),
		consumer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	runTimed(b, c, count)
}

// BenchmarkConsumerPeakRSS drains b.N valid updates into PostgreSQL with a consumer
// process (this test binary running consumer.Load and consumer.Run on a config file, as
// `kafkasub consumer` does) and reports its peak resident set size (VmHWM) and msgs/s.
// The figure of the issue: -bench ConsumerPeakRSS -benchtime 1000000x.
func BenchmarkConsumerPeakRSS(b *testing.B) {
	dsn := consumertest.PostgresDSN(b)
	topic := consumertest.UniqueName("rss")
	brokers := benchBrokers(b, topic, topic+".dlq")
	benchCatalogue(b, consumer.DriverPostgres, dsn)
	fillTopic(b, brokers, topic, b.N, true)
	cfg := benchConfig(brokers, topic, consumer.DriverPostgres, "")
	b.ResetTimer()
	start := time.Now()
	cmd := startConsumerProcess(b, cfg, dsn)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := start.Add(10 * time.Minute)
	for consumertest.GroupLag(b, brokers, cfg.Kafka.ConsumerGroup, topic) > 0 {
		if time.Now().After(deadline) {
			b.Fatal("the consumer did not drain the topic within 10 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	var kb float64
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	b.ReportMetric(kb/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
