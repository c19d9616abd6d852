package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// TestTwoConsumersShareTheGroupAndOneLeaves: two members split the partitions; when one
// stops, the other takes its partitions over from the committed offsets and the stream
// ends fully applied.
func TestTwoConsumersShareTheGroupAndOneLeaves(t *testing.T) {
	const partitions = 4
	topic := consumertest.UniqueName("group")
	dlq := topic + ".dlq"
	brokers := consumertest.Kfake(t, partitions, topic, dlq)
	dsn := consumertest.SQLiteDSN(t)
	db, err := consumer.OpenDatabase(consumer.DriverSQLite, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sqlDB, _ := db.DB(); _ = sqlDB.Close() }()
	ctx := context.Background()
	if err := inventory.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var products []inventory.Product
	for i := range partitions {
		products = append(products, inventory.Product{Code: fmt.Sprintf("G-%d", i), Name: "g"})
	}
	if err := inventory.Insert(ctx, db, products); err != nil {
		t.Fatal(err)
	}
	p := consumertest.Producer(t, brokers)
	next := 0
	produce := func(n int) {
		t.Helper()
		var msgs []*sarama.ProducerMessage
		for range n {
			part := int32(next % partitions) // partition i only updates product G-i
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part,
				Value: sarama.StringEncoder(fmt.Sprintf(`{"product_code": "G-%d", "inventory_count": %d}`, part, next))})
			next++
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
	}
	cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, dsn)
	a := startConsumer(t, cfg)
	b := startConsumer(t, cfg)
	produce(400)
	processed := func(r *running) int {
		r.out.mu.Lock()
		defer r.out.mu.Unlock()
		return len(r.out.byKey)
	}
	deadline := time.Now().Add(60 * time.Second)
	for processed(a)+processed(b) < 400 {
		if time.Now().After(deadline) {
			t.Fatalf("%d + %d of 400 processed within 60s", processed(a), processed(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if processed(a) == 0 || processed(b) == 0 {
		t.Fatalf("the members processed %d and %d messages; both should have had partitions", processed(a), processed(b))
	}
	a.stop()
	produce(400)
	deadline = time.Now().Add(60 * time.Second)
	for {
		done := true
		for i := range partitions {
			// The last message of partition i carries 800 - partitions + i.
			if inventoryOf(t, db, fmt.Sprintf("G-%d", i)) != int64(800-partitions+i) {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the remaining member did not apply the stream within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if recs := consumertest.ReadTopic(t, brokers, dlq, 0, 0); len(recs) != 0 {
		t.Fatalf("%d valid messages were dead-lettered", len(recs))
	}
}
