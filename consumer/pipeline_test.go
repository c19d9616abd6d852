package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/dbfault"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// outcomes records the monitor's message events by offset.
type outcomes struct {
	mu      sync.Mutex
	byKey   map[string]consumer.Event // "partition/offset" -> processed, dead-lettered or skipped event
	retries int
	changed chan struct{}
}

func watch(m *consumer.Monitor) *outcomes {
	o := &outcomes{byKey: map[string]consumer.Event{}, changed: make(chan struct{}, 1)}
	m.Subscribe(func(e consumer.Event) {
		o.mu.Lock()
		switch e.Type {
		case consumer.EventProcessed, consumer.EventDeadLettered, consumer.EventSkipped:
			o.byKey[fmt.Sprintf("%d/%d", e.Partition, e.Offset)] = e
		case consumer.EventRetrying:
			o.retries++
		}
		o.mu.Unlock()
		select {
		case o.changed <- struct{}{}:
		default:
		}
	})
	return o
}

// waitFor waits until cond (called under the lock) holds.
func (o *outcomes) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		ok := cond()
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-o.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// outcome waits for the outcome of the message at partition/offset.
func (o *outcomes) outcome(t *testing.T, partition int32, offset int64) consumer.Event {
	t.Helper()
	key := fmt.Sprintf("%d/%d", partition, offset)
	var e consumer.Event
	o.waitFor(t, "the outcome of "+key, 60*time.Second, func() bool {
		var ok bool
		e, ok = o.byKey[key]
		return ok
	})
	return e
}

// running is a consumer started by startConsumer.
type running struct {
	c    *consumer.Consumer
	out  *outcomes
	stop func()
}

func startConsumer(t *testing.T, cfg *consumer.Config, opts ...consumer.Option) *running {
	t.Helper()
	mon := consumer.NewMonitor()
	out := watch(mon)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := consumer.New(cfg, append([]consumer.Option{consumer.WithMonitor(mon), consumer.WithLogger(logger),
		consumer.WithPingInterval(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consumer.Run: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("consumer did not stop within 60s")
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(60 * time.Second)
	for !c.Ready() {
		select {
		case err := <-done:
			t.Fatalf("consumer stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("consumer not ready within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &running{c: c, out: out, stop: stop}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func headerMap(hs []*sarama.RecordHeader) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[string(h.Key)] = string(h.Value)
	}
	return m
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	code, _ := httpGet(t, url)
	return code
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func inventoryOf(t *testing.T, db *gorm.DB, code string) int64 {
	t.Helper()
	p, err := inventory.NewRepository(db).Find(context.Background(), code)
	if err != nil {
		t.Fatalf("find %s: %v", code, err)
	}
	return p.Inventory
}

// missionEnv is a seeded database, a topic and its dead-letter topic, and a consumer.
type missionEnv struct {
	brokers  []string
	topic    string
	dlq      string
	db       *gorm.DB // the test's own connection, never cut
	first    inventory.Product
	producer sarama.SyncProducer
	run      *running
}

// setDown makes the consumer's database unreachable (true) or reachable again.
type setDown func(bool)

// runMission runs the walk-through's six cases against one consumer.
func runMission(t *testing.T, kafka func(testing.TB, int32, ...string) []string, driver, dsn, consumerDSN string, down setDown, opts ...consumer.Option) {
	e := &missionEnv{topic: consumertest.UniqueName("updates")}
	e.dlq = e.topic + ".dlq"
	e.brokers = kafka(t, 1, e.topic, e.dlq)
	db := consumertest.OpenDatabase(t, driver, dsn)
	e.db = db
	ctx := context.Background()
	if err := inventory.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	seeded, err := inventory.Seed(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	e.first = seeded[0]
	e.producer = consumertest.Producer(t, e.brokers)
	cfg := consumertest.Config(e.brokers, e.topic, e.dlq, driver, consumerDSN)
	e.run = startConsumer(t, cfg, opts...)

	send := func(value string) int64 {
		t.Helper()
		_, off, err := e.producer.SendMessage(&sarama.ProducerMessage{
			Topic:   e.topic,
			Key:     sarama.StringEncoder("key-1"),
			Value:   sarama.StringEncoder(value),
			Headers: []sarama.RecordHeader{{Key: []byte("trace-id"), Value: []byte("abc123")}},
		})
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		return off
	}
	var dlqCount int
	// expectDeadLetter checks the next dead-letter record.
	expectDeadLetter := func(t *testing.T, offset int64, value string, class consumer.ErrorClass, message string) {
		t.Helper()
		ev := e.run.out.outcome(t, 0, offset)
		if ev.Type != consumer.EventDeadLettered || ev.Class != class {
			t.Fatalf("outcome %s class %q, want %s class %q (error: %v)", ev.Type, ev.Class, consumer.EventDeadLettered, class, ev.Err)
		}
		recs := consumertest.ReadTopic(t, e.brokers, e.dlq, dlqCount+1, 30*time.Second)
		if len(recs) != dlqCount+1 {
			t.Fatalf("dead-letter topic has %d records, want %d", len(recs), dlqCount+1)
		}
		dlqCount++
		r := recs[len(recs)-1]
		if string(r.Value) != value || string(r.Key) != "key-1" {
			t.Errorf("dead-lettered key %q value %q, want the original %q %q", r.Key, r.Value, "key-1", value)
		}
		h := headerMap(r.Headers)
		want := map[string]string{
			"trace-id":                       "abc123",
			consumer.HeaderOriginalTopic:     e.topic,
			consumer.HeaderOriginalPartition: "0",
			consumer.HeaderOriginalOffset:    fmt.Sprint(offset),
			consumer.HeaderConsumerGroup:     cfg.Kafka.ConsumerGroup,
			consumer.HeaderSubscription:      cfg.Subscription,
			consumer.HeaderErrorClass:        string(class),
			consumer.HeaderAttempts:          "1",
		}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("header %s = %q, want %q", k, h[k], v)
			}
		}
		if !strings.Contains(h[consumer.HeaderErrorMessage], message) {
			t.Errorf("header %s = %q, want it to contain %q", consumer.HeaderErrorMessage, h[consumer.HeaderErrorMessage], message)
		}
		if ts, err := time.Parse(time.RFC3339Nano, h[consumer.HeaderOriginalTimestamp]); err != nil || ts.IsZero() {
			t.Errorf("header %s = %q is not an RFC 3339 time", consumer.HeaderOriginalTimestamp, h[consumer.HeaderOriginalTimestamp])
		}
		if e.first.Inventory != inventoryOf(t, e.db, e.first.Code) {
			t.Errorf("inventory changed to %d by a dead-lettered message", inventoryOf(t, e.db, e.first.Code))
		}
	}

	t.Run("a valid update sets the inventory", func(t *testing.T) {
		off := send(fmt.Sprintf(`{"product_code": %q, "inventory_count": 25}`, e.first.Code))
		if ev := e.run.out.outcome(t, 0, off); ev.Type != consumer.EventProcessed {
			t.Fatalf("outcome %s (%v), want processed", ev.Type, ev.Err)
		}
		if got := inventoryOf(t, e.db, e.first.Code); got != 25 {
			t.Fatalf("inventory is %d, want 25", got)
		}
		e.first.Inventory = 25
	})
	t.Run("a negative count is dead-lettered and changes nothing", func(t *testing.T) {
		v := fmt.Sprintf(`{"product_code": %q, "inventory_count": -1}`, e.first.Code)
		expectDeadLetter(t, send(v), v, consumer.ClassValidationFailed, "Inventory count must be greater than or equal to 0")
	})
	t.Run("an unknown product is dead-lettered", func(t *testing.T) {
		v := `{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`
		expectDeadLetter(t, send(v), v, consumer.ClassValidationFailed, "Product code NO_SUCH_CODE does not exist")
	})
	t.Run("a payload that is not JSON is dead-lettered", func(t *testing.T) {
		v := `this is no good`
		expectDeadLetter(t, send(v), v, consumer.ClassInvalidPayload, "payload is not a JSON object")
	})
	t.Run("unexpected attributes are dead-lettered, naming them", func(t *testing.T) {
		v := `{"greeting": "hello"}`
		expectDeadLetter(t, send(v), v, consumer.ClassUnexpectedAttributes, "unexpected attributes: greeting")
	})
	t.Run("an update sent while the database is down is applied when it returns", func(t *testing.T) {
		health := "http://" + e.run.c.HealthAddr()
		if got := httpStatus(t, health+"/readyz"); got != http.StatusOK {
			t.Fatalf("/readyz is %d before the outage, want 200", got)
		}
		e.run.out.mu.Lock()
		retriesBefore := e.run.out.retries
		e.run.out.mu.Unlock()
		down(true)
		off := send(fmt.Sprintf(`{"product_code": %q, "inventory_count": 99}`, e.first.Code))
		e.run.out.waitFor(t, "two retries", 60*time.Second, func() bool { return e.run.out.retries >= retriesBefore+2 })
		deadline := time.Now().Add(30 * time.Second)
		for httpStatus(t, health+"/readyz") == http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatal("/readyz stayed 200 while the database was down")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if code, body := httpGet(t, health+"/readyz/database"); code == http.StatusOK || !strings.Contains(body, "the database does not answer") {
			t.Errorf("/readyz/database is %d %q during the outage, want a failure naming the database", code, body)
		}
		if e.run.c.Ready() {
			t.Error("Ready() is true while the database is down")
		}
		if got := httpStatus(t, health+"/healthz"); got != http.StatusOK {
			t.Errorf("/healthz is %d during the outage, want 200 (the loop is alive)", got)
		}
		down(false)
		if ev := e.run.out.outcome(t, 0, off); ev.Type != consumer.EventProcessed {
			t.Fatalf("outcome %s (%v), want processed", ev.Type, ev.Err)
		}
		if got := inventoryOf(t, e.db, e.first.Code); got != 99 {
			t.Fatalf("inventory is %d after the database returned, want 99", got)
		}
		if recs := consumertest.ReadTopic(t, e.brokers, e.dlq, dlqCount, 10*time.Second); len(recs) != dlqCount {
			t.Fatalf("dead-letter topic has %d records, want %d: the outage must not dead-letter", len(recs), dlqCount)
		}
		deadline = time.Now().Add(30 * time.Second)
		for httpStatus(t, health+"/readyz") != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatal("/readyz did not return to 200 after the database came back")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestMissionAgainstKfakeAndSQLite(t *testing.T) {
	dsn := consumertest.SQLiteDSN(t)
	gate := dbfault.NewGate()
	runMission(t, consumertest.Kfake, consumer.DriverSQLite, dsn, dsn, gate.SetDown,
		consumer.WithDatabaseOptions(consumer.WithConnector(gate.Wrap)))
}

func TestMissionAgainstApacheKafkaAndPostgreSQL(t *testing.T) {
	dsn := consumertest.PostgresDSN(t)
	if _, err := consumertest.HostPort(dsn); err != nil {
		t.Fatalf("%s: %v", consumertest.EnvPostgresDSN, err)
	}
	// Skip before starting anything when there is no Kafka.
	consumertest.RealKafka(t, 1)
	hp, _ := consumertest.HostPort(dsn)
	proxy, err := dbfault.NewProxy(hp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	cut := func(down bool) {
		if down {
			proxy.Cut()
		} else {
			proxy.Restore()
		}
	}
	runMission(t, consumertest.RealKafka, consumer.DriverPostgres, dsn, consumertest.ReplaceHost(dsn, proxy.Addr()), cut)
}

func TestMissionAgainstKfakeAndPostgreSQL(t *testing.T) {
	dsn := consumertest.PostgresDSN(t)
	hp, err := consumertest.HostPort(dsn)
	if err != nil {
		t.Fatalf("%s: %v", consumertest.EnvPostgresDSN, err)
	}
	proxy, err := dbfault.NewProxy(hp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	cut := func(down bool) {
		if down {
			proxy.Cut()
		} else {
			proxy.Restore()
		}
	}
	runMission(t, consumertest.Kfake, consumer.DriverPostgres, dsn, consumertest.ReplaceHost(dsn, proxy.Addr()), cut)
}
