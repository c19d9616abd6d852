package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// collectHandler is a bare sarama consumer group handler that records values and marks.
type collectHandler struct {
	mu     sync.Mutex
	values []string
	want   int
	done   chan struct{}
	once   sync.Once
}

func (h *collectHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *collectHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *collectHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			h.mu.Lock()
			h.values = append(h.values, string(m.Value))
			n := len(h.values)
			h.mu.Unlock()
			s.MarkMessage(m, "")
			if n >= h.want {
				h.once.Do(func() { close(h.done) })
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// roundTrip produces n messages with a sarama producer and reads them back with a sarama
// consumer group, in order.
func roundTrip(t *testing.T, brokers []string, topic string) {
	const n = 50
	p := consumertest.Producer(t, brokers)
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("message-%03d", i)
	}
	consumertest.Produce(t, p, topic, values...)

	sc := sarama.NewConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	group, err := sarama.NewConsumerGroup(brokers, consumertest.UniqueName("smoke"), sc)
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	defer group.Close()
	h := &collectHandler{want: n, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("consumed %d of %d messages within 60s", len(h.values), n)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("consume: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, v := range values {
		if h.values[i] != v {
			t.Fatalf("message %d is %q, want %q (order must be kept)", i, h.values[i], v)
		}
	}
}

func TestSaramaRoundTripsMessagesThroughKfake(t *testing.T) {
	topic := consumertest.UniqueName("smoke")
	roundTrip(t, consumertest.Kfake(t, 1, topic), topic)
}

func TestSaramaRoundTripsMessagesThroughApacheKafka(t *testing.T) {
	topic := consumertest.UniqueName("smoke")
	roundTrip(t, consumertest.RealKafka(t, 1, topic), topic)
}

// openAndSeed opens the database with gorm, migrates, seeds and reads a product back.
func openAndSeed(t *testing.T, driver, dsn string) {
	db, err := consumer.OpenDatabase(driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	ctx := context.Background()
	if err := consumer.PingDatabase(ctx, db, 10*time.Second); err != nil {
		t.Fatalf("ping %s: %v", driver, err)
	}
	if err := inventory.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	seeded, err := inventory.Seed(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(seeded) != len(inventory.SeedProducts) {
		t.Fatalf("seeded %d products, want %d", len(seeded), len(inventory.SeedProducts))
	}
	again, err := inventory.Seed(ctx, db)
	if err != nil {
		t.Fatalf("second seed: %v", err)
	}
	if len(again) != len(seeded) || again[0].ID != seeded[0].ID {
		t.Fatalf("a second seed must keep the products: got %+v, had %+v", again, seeded)
	}
	p, err := inventory.NewRepository(db).Find(ctx, seeded[0].Code)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != inventory.SeedProducts[0].Name || p.Inventory != inventory.SeedProducts[0].Inventory {
		t.Fatalf("read back %+v, want %+v", p, inventory.SeedProducts[0])
	}
}

func TestGormOpensSQLiteInPureGo(t *testing.T) {
	openAndSeed(t, consumer.DriverSQLite, consumertest.SQLiteDSN(t))
}

func TestGormOpensPostgreSQL(t *testing.T) {
	openAndSeed(t, consumer.DriverPostgres, consumertest.PostgresDSN(t))
}
