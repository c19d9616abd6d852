package consumer_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// seededSQLite returns a migrated, seeded SQLite DSN and its first product.
func seededSQLite(t *testing.T) (string, inventory.Product) {
	t.Helper()
	dsn := consumertest.SQLiteDSN(t)
	db, err := consumer.OpenDatabase(consumer.DriverSQLite, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sqlDB, _ := db.DB(); _ = sqlDB.Close() }()
	if err := inventory.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	seeded, err := inventory.Seed(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return dsn, seeded[0]
}

func TestSentryReceivesTheErrorWithItsClass(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	sentry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err == nil {
				body = zr
			}
		}
		b, _ := io.ReadAll(body)
		mu.Lock()
		bodies = append(bodies, r.URL.Path+"\n"+string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer sentry.Close()

	topic := consumertest.UniqueName("sentry")
	brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
	dsn, _ := seededSQLite(t)
	cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn)
	cfg.SentryEnabled = true
	cfg.SentryDSN = "http://publickey@" + strings.TrimPrefix(sentry.URL, "http://") + "/42"
	r := startConsumer(t, cfg)
	_, off, err := consumertest.Producer(t, brokers).SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("this is no good")})
	if err != nil {
		t.Fatal(err)
	}
	r.out.outcome(t, 0, off)
	r.stop() // flushes Sentry

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		var found string
		for _, b := range bodies {
			if strings.Contains(b, `"error_class":"InvalidPayload"`) {
				found = b
			}
		}
		n := len(bodies)
		mu.Unlock()
		if found != "" {
			if !strings.Contains(found, "/api/42/") {
				t.Errorf("Sentry request went to %q, want the project 42 endpoint", strings.SplitN(found, "\n", 2)[0])
			}
			if !strings.Contains(found, "payload is not a JSON object") {
				t.Errorf("Sentry event lacks the error message: %s", found)
			}
			if !strings.Contains(found, fmt.Sprintf(`"offset":"%d"`, off)) || !strings.Contains(found, `"topic":"`+topic+`"`) {
				t.Errorf("Sentry event lacks the message's coordinates: %s", found)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Sentry event with error_class InvalidPayload within 30s (%d requests)", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// validThenInvalid starts a consumer on a fresh kfake topic and SQLite catalogue, sends a
// valid update and a message with an unexpected attribute, and waits for both outcomes;
// last is the invalid message's offset.
func validThenInvalid(t *testing.T, prefix string) (topic string, r *running, last int64) {
	t.Helper()
	topic = consumertest.UniqueName(prefix)
	brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
	dsn, first := seededSQLite(t)
	r = startConsumer(t, consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn))
	p := consumertest.Producer(t, brokers)
	for _, v := range []string{fmt.Sprintf(`{"product_code": %q, "inventory_count": 3}`, first.Code), `{"greeting": "hello"}`} {
		_, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)})
		if err != nil {
			t.Fatal(err)
		}
		last = off
	}
	r.out.outcome(t, 0, last)
	return topic, r, last
}

func TestMetricsCountOutcomesAndDatabaseState(t *testing.T) {
	topic, r, _ := validThenInvalid(t, "metrics")
	wants := []string{
		`kafkasub_consumer_messages_total{class="",outcome="processed",subscription="test/` + topic + `",topic="` + topic + `"} 1`,
		`kafkasub_consumer_messages_total{class="UnexpectedAttributes",outcome="dead_lettered",subscription="test/` + topic + `",topic="` + topic + `"} 1`,
		`kafkasub_consumer_dead_letter_writes_total{subscription="test/` + topic + `",topic="` + topic + `"} 1`,
		`kafkasub_consumer_database_up{subscription="test/` + topic + `",topic="` + topic + `"} 1`,
		`kafkasub_consumer_group_joined{subscription="test/` + topic + `",topic="` + topic + `"} 1`,
		`kafkasub_consumer_processing_seconds_count{subscription="test/` + topic + `",topic="` + topic + `"} 2`,
	}
	// Subscribers run one after the other: the metrics one may see the last event after the
	// test's own subscriber did, so read /metrics until it has caught up.
	var text string
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + r.c.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text, missing = string(b), nil
		for _, want := range wants {
			if !strings.Contains(text, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q after 30s:\n%s", missing, text)
		}
	}
}

// TestRetriesExhaustedDeadLettersTheMessage: with retry.maxAttempts, a transient error that
// persists dead-letters the message with class RetriesExhausted and the attempt count; the
// other messages of its batch get their own outcome.
func TestRetriesExhaustedDeadLettersTheMessage(t *testing.T) {
	topic := consumertest.UniqueName("exhausted")
	brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
	dsn, _ := seededSQLite(t)
	cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn)
	cfg.Retry.MaxAttempts = 3
	cfg.Batch.MaxWait.Duration = 200 * time.Millisecond // let the three arrive as one batch
	h := consumer.HandlerFunc(func(ctx context.Context, _ *gorm.DB, m *consumer.Message) error {
		if string(m.Value) == "stuck" {
			return consumer.Transient(consumer.ClassDatabaseUnavailable, fmt.Errorf("database is away"))
		}
		return nil
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := startConsumer(t, cfg, consumer.WithHandler(h), consumer.WithLogger(quiet))
	consumertest.Produce(t, consumertest.Producer(t, brokers), topic, "fine", "stuck", "fine too")
	for off, want := range []consumer.EventType{consumer.EventProcessed, consumer.EventDeadLettered, consumer.EventProcessed} {
		if ev := r.out.outcome(t, 0, int64(off)); ev.Type != want {
			t.Errorf("offset %d: %s (%v), want %s", off, ev.Type, ev.Err, want)
		}
	}
	ev := r.out.outcome(t, 0, 1)
	if ev.Class != consumer.ClassRetriesExhausted || ev.Attempt != 3 {
		t.Fatalf("the stuck message: class %s after %d attempts, want RetriesExhausted after 3", ev.Class, ev.Attempt)
	}
	recs := consumertest.ReadTopic(t, brokers, topic+".dlq", 1, 30*time.Second)
	if len(recs) != 1 || string(recs[0].Value) != "stuck" {
		t.Fatalf("dead-letter topic has %d records, want only the stuck message", len(recs))
	}
	d, _ := consumer.ParseDeadLetter(consumer.HeadersFromSarama(recs[0].Headers))
	if d.ErrorClass != consumer.ClassRetriesExhausted || d.Attempts != 3 || !strings.Contains(d.ErrorMessage, "database is away") {
		t.Fatalf("dead letter %+v, want class RetriesExhausted, 3 attempts and the last error", d)
	}
}

// TestAHandlerPanicIsDeadLettered: a panic is recovered and isolated: the message that
// panics is dead-lettered with class HandlerPanic, its batch neighbours are processed.
func TestAHandlerPanicIsDeadLettered(t *testing.T) {
	topic := consumertest.UniqueName("panic")
	brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
	dsn, _ := seededSQLite(t)
	cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn)
	cfg.Batch.MaxWait.Duration = 200 * time.Millisecond // let the three arrive as one batch
	h := consumer.HandlerFunc(func(ctx context.Context, _ *gorm.DB, m *consumer.Message) error {
		if string(m.Value) == "boom" {
			panic("boom")
		}
		return nil
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := startConsumer(t, cfg, consumer.WithHandler(h), consumer.WithLogger(quiet))
	consumertest.Produce(t, consumertest.Producer(t, brokers), topic, "fine", "boom", "fine too")
	for off, want := range []consumer.EventType{consumer.EventProcessed, consumer.EventDeadLettered, consumer.EventProcessed} {
		ev := r.out.outcome(t, 0, int64(off))
		if ev.Type != want {
			t.Errorf("offset %d: %s, want %s", off, ev.Type, want)
		}
		if want == consumer.EventDeadLettered && ev.Class != consumer.ClassHandlerPanic {
			t.Errorf("offset %d: class %s, want %s", off, ev.Class, consumer.ClassHandlerPanic)
		}
	}
}

// TestGracefulShutdownCommitsWhatWasProcessed: after a cancelled Run, a new consumer of the
// same group starts after the last processed message.
func TestGracefulShutdownCommitsWhatWasProcessed(t *testing.T) {
	topic := consumertest.UniqueName("shutdown")
	brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
	dsn, first := seededSQLite(t)
	cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn)
	p := consumertest.Producer(t, brokers)
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, first.Code, i))
	}
	consumertest.Produce(t, p, topic, values...)
	r := startConsumer(t, cfg)
	r.out.outcome(t, 0, 9)
	r.stop()

	var seen []int64
	var mu sync.Mutex
	h := consumer.HandlerFunc(func(ctx context.Context, _ *gorm.DB, m *consumer.Message) error {
		mu.Lock()
		seen = append(seen, m.Offset)
		mu.Unlock()
		return nil
	})
	r2 := startConsumer(t, cfg, consumer.WithHandler(h))
	consumertest.Produce(t, p, topic, "after")
	r2.out.outcome(t, 0, 10)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != 10 {
		t.Fatalf("the restarted consumer saw offsets %v, want only [10]: the first run's offsets must be committed on shutdown", seen)
	}
}

// BenchmarkLogDeadLettered: the warning the log subscriber writes per dead letter, to a
// text handler that discards it (the formatting is the cost).
func BenchmarkLogDeadLettered(b *testing.B) {
	sub := consumer.LogSubscriber(slog.New(slog.NewTextHandler(io.Discard, nil)))
	e := consumer.Event{Type: consumer.EventDeadLettered, Partition: 3, Offset: 123456789, Class: consumer.ClassValidationFailed,
		Err: consumer.Permanentf(consumer.ClassValidationFailed, "Inventory count must be greater than or equal to 0"), Attempt: 1}
	start := time.Now()
	for b.Loop() {
		sub(e)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s")
}
