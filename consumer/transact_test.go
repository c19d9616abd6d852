package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
	"github.com/kafkasub/kafkasub/consumer/offsetstore"
)

// storedOffset reads the partition's offset from the runtime's offset table, whatever
// incarnation of the topic its row is of (offsetstore.None without a row).
func storedOffset(t *testing.T, db *gorm.DB, cfg *consumer.Config, partition int32) int64 {
	t.Helper()
	var got []int64
	err := db.Table(offsetstore.DefaultTable).Where("consumer_group = ? AND topic = ? AND partition_number = ?",
		cfg.Kafka.ConsumerGroup, cfg.Kafka.Topic, partition).Pluck("last_offset", &got).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		return offsetstore.None
	}
	return got[0]
}

// TestABatchTheDatabaseRefusesDeadLettersOnlyTheMessageThatCausesIt: the statement of a
// whole batch fails for one message's change; the runtime narrows the batch down, so that
// message alone is dead-lettered and every other one is applied.
func TestABatchTheDatabaseRefusesDeadLettersOnlyTheMessageThatCausesIt(t *testing.T) {
	for _, b := range consumertest.Databases {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			dsn := b.DSN(t)
			db := consumertest.OpenDatabase(t, b.Driver, dsn)
			ctx := context.Background()
			if err := inventory.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			const n = 300
			products := make([]inventory.Product, n)
			for i := range products {
				products[i] = inventory.Product{Code: fmt.Sprintf("P-%04d", i), Name: "p"}
			}
			if err := inventory.Insert(ctx, db, products); err != nil {
				t.Fatal(err)
			}
			if err := db.Exec(b.RefuseInventoryAbove1000).Error; err != nil {
				t.Fatal(err)
			}
			topic := consumertest.UniqueName("refused")
			brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
			values := make([]string, n)
			const bad = 137
			for i := range values {
				count := i
				if i == bad {
					count = 5000
				}
				values[i] = fmt.Sprintf(`{"product_code": "P-%04d", "inventory_count": %d}`, i, count)
			}
			consumertest.Produce(t, consumertest.Producer(t, brokers), topic, values...)
			cfg := consumertest.Config(brokers, topic, topic+".dlq", b.Driver, dsn)
			cfg.Batch.MaxWait.Duration = time.Second // one batch, so the neighbours share its statement
			r := startConsumer(t, cfg)
			for i := range n {
				ev := r.out.outcome(t, 0, int64(i))
				want := consumer.EventProcessed
				if i == bad {
					want = consumer.EventDeadLettered
				}
				if ev.Type != want {
					t.Fatalf("offset %d: %s (%v), want %s", i, ev.Type, ev.Err, want)
				}
				if i == bad && ev.Class != consumer.ClassDatabaseError {
					t.Fatalf("offset %d: class %s, want DatabaseError", i, ev.Class)
				}
			}
			for i, p := range products {
				want := int64(i)
				if i == bad {
					want = 0
				}
				if got := inventoryOf(t, db, p.Code); got != want {
					t.Fatalf("%s inventory %d, want %d", p.Code, got, want)
				}
			}
			recs := consumertest.ReadTopic(t, brokers, topic+".dlq", 1, 10*time.Second)
			if len(recs) != 1 || recs[0].Offset != 0 || string(recs[0].Value) != values[bad] {
				t.Fatalf("dead-letter topic has %d records, want only offset %d's", len(recs), bad)
			}
			if got := storedOffset(t, db, cfg, 0); got != n-1 {
				t.Fatalf("stored offset %d, want %d", got, n-1)
			}
		})
	}
}

// notes is a table a test handler writes one row per message to.
type note struct {
	At int64 `gorm:"primaryKey;autoIncrement:false"`
}

// TestAMessageTheHandlerRejectsChangesNothingEvenIfItWroteFirst: the handler writes a row
// for every message, then rejects some; the runtime rolls the transaction back and runs the
// batch again without them, so a dead-lettered message leaves no row and no other message
// is written twice or lost.
func TestAMessageTheHandlerRejectsChangesNothingEvenIfItWroteFirst(t *testing.T) {
	for _, b := range consumertest.Databases {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			dsn := b.DSN(t)
			db := consumertest.OpenDatabase(t, b.Driver, dsn)
			if err := db.AutoMigrate(&note{}); err != nil {
				t.Fatal(err)
			}
			topic := consumertest.UniqueName("rejects")
			brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
			const n = 100
			values := make([]string, n)
			for i := range values {
				values[i] = "ok"
				if i%7 == 3 {
					values[i] = "bad"
				}
			}
			consumertest.Produce(t, consumertest.Producer(t, brokers), topic, values...)
			h := consumer.HandlerFunc(func(ctx context.Context, tx *gorm.DB, m *consumer.Message) error {
				if err := tx.Create(&note{At: m.Offset}).Error; err != nil {
					return err
				}
				if string(m.Value) == "bad" {
					return consumer.Permanentf(consumer.ClassValidationFailed, "offset %d is bad", m.Offset)
				}
				return nil
			})
			cfg := consumertest.Config(brokers, topic, topic+".dlq", b.Driver, dsn)
			cfg.Batch.MaxWait.Duration = time.Second
			r := startConsumer(t, cfg, consumer.WithHandler(h))
			for i := range n {
				ev := r.out.outcome(t, 0, int64(i))
				if want := map[string]consumer.EventType{"ok": consumer.EventProcessed, "bad": consumer.EventDeadLettered}[values[i]]; ev.Type != want {
					t.Fatalf("offset %d: %s (%v), want %s", i, ev.Type, ev.Err, want)
				}
			}
			var rows []note
			if err := db.Order("at").Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			got := map[int64]bool{}
			for _, r := range rows {
				got[r.At] = true
			}
			for i := range n {
				if got[int64(i)] != (values[i] == "ok") {
					t.Errorf("offset %d (%s): row present %v", i, values[i], got[int64(i)])
				}
			}
			recs := consumertest.ReadTopic(t, brokers, topic+".dlq", n/7, 10*time.Second)
			if want := (n + 3) / 7; len(recs) != want {
				t.Errorf("dead-letter topic has %d records, want %d (one per bad message)", len(recs), want)
			}
			if got := storedOffset(t, db, cfg, 0); got != n-1 {
				t.Fatalf("stored offset %d, want %d", got, n-1)
			}
		})
	}
}

// TestARedeliveryAfterTheKafkaCommitWasLostIsANoOp: the group's committed offset goes back
// to 0 (as after kill -9 between the database commit and the Kafka commit); the restarted
// consumer starts after the stored offset, so no message is handled twice, and the next
// one is.
func TestARedeliveryAfterTheKafkaCommitWasLostIsANoOp(t *testing.T) {
	dsn := consumertest.SQLiteDSN(t)
	db := consumertest.OpenDatabase(t, consumer.DriverSQLite, dsn)
	if err := db.AutoMigrate(&note{}); err != nil {
		t.Fatal(err)
	}
	topic := consumertest.UniqueName("redelivery")
	brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
	producer := consumertest.Producer(t, brokers)
	var mu sync.Mutex
	calls := map[int64]int{}
	h := consumer.HandlerFunc(func(ctx context.Context, tx *gorm.DB, m *consumer.Message) error {
		mu.Lock()
		calls[m.Offset]++
		mu.Unlock()
		return tx.Create(&note{At: m.Offset}).Error
	})
	cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn)
	values := make([]string, 50)
	for i := range values {
		values[i] = "v"
	}
	consumertest.Produce(t, producer, topic, values...)
	r := startConsumer(t, cfg, consumer.WithHandler(h))
	r.out.outcome(t, 0, 49)
	r.stop()

	rewindGroup(t, brokers, cfg.Kafka.ConsumerGroup, topic, 0)
	consumertest.Produce(t, producer, topic, "next")
	r = startConsumer(t, cfg, consumer.WithHandler(h))
	if ev := r.out.outcome(t, 0, 50); ev.Type != consumer.EventProcessed {
		t.Fatalf("offset 50: %s (%v), want processed", ev.Type, ev.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	for off := range int64(51) {
		if calls[off] != 1 {
			t.Errorf("offset %d handled %d times, want once", off, calls[off])
		}
	}
}

// rewindGroup commits offset for the group's partition 0, whatever it was.
func rewindGroup(t *testing.T, brokers []string, group, topic string, offset int64) {
	t.Helper()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	pom, err := om.ManagePartition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	pom.ResetOffset(offset, "")
	om.Commit()
	if err := pom.Close(); err != nil {
		t.Fatal(err)
	}
	if err := om.Close(); err != nil {
		t.Fatal(err)
	}
	if next, _ := pom.NextOffset(); next != offset {
		t.Fatalf("the group's offset is %d after the rewind, want %d", next, offset)
	}
}

// TestADeadLetterWrittenBeforeACrashIsNotWrittenAgain: the dead-letter topic already holds
// the letter of a message past the stored offset (the last life crashed after the letter
// was acknowledged and before its transaction committed); the next claim finds it in the
// topic's tail and does not write it again. A letter of another consumer group does not
// count.
func TestADeadLetterWrittenBeforeACrashIsNotWrittenAgain(t *testing.T) {
	dsn := consumertest.SQLiteDSN(t)
	topic := consumertest.UniqueName("crashed")
	dlq := topic + ".dlq"
	brokers := consumertest.Kfake(t, 1, topic, dlq)
	producer := consumertest.Producer(t, brokers)
	cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, dsn)
	consumertest.Produce(t, producer, topic, "ok", "bad", "ok", "bad")
	for _, d := range []consumer.DeadLetter{
		{OriginalTopic: topic, OriginalPartition: 0, OriginalOffset: 1, ConsumerGroup: cfg.Kafka.ConsumerGroup, ErrorClass: consumer.ClassValidationFailed},
		{OriginalTopic: topic, OriginalPartition: 0, OriginalOffset: 3, ConsumerGroup: "another-group", ErrorClass: consumer.ClassValidationFailed},
	} {
		hs := consumer.HeadersToSarama(d.Headers())
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: dlq, Value: sarama.StringEncoder("bad"), Headers: hs}); err != nil {
			t.Fatal(err)
		}
	}
	h := consumer.HandlerFunc(func(ctx context.Context, tx *gorm.DB, m *consumer.Message) error {
		if string(m.Value) == "bad" {
			return consumer.Permanentf(consumer.ClassValidationFailed, "bad")
		}
		return nil
	})
	r := startConsumer(t, cfg, consumer.WithHandler(h))
	for off, want := range []consumer.EventType{consumer.EventProcessed, consumer.EventDeadLettered, consumer.EventProcessed, consumer.EventDeadLettered} {
		if ev := r.out.outcome(t, 0, int64(off)); ev.Type != want {
			t.Fatalf("offset %d: %s, want %s", off, ev.Type, want)
		}
	}
	recs := consumertest.ReadTopic(t, brokers, dlq, 3, 10*time.Second)
	var offsets []int64
	for _, rec := range recs {
		d, _ := consumer.ParseDeadLetter(consumer.HeadersFromSarama(rec.Headers))
		offsets = append(offsets, d.OriginalOffset)
	}
	if len(recs) != 3 || offsets[2] != 3 {
		t.Fatalf("dead letters for offsets %v, want [1 3 3]: offset 1's letter was there, offset 3's was another group's", offsets)
	}
}
