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

// A consumer of more partitions than database connections (one, so that a claim that took
// a second connection while holding one would wait forever): the claims wait for a
// connection in turn (their transactions, and the stored-offset reads before dead letters
// outside them), and every message is applied or dead-lettered once, none blocked.
func TestEightPartitionsShareOnePostgreSQLConnection(t *testing.T) {
	const partitions, products, messages = 8, 40, 800
	dsn := consumertest.PostgresDSN(t)
	db := consumertest.OpenDatabase(t, consumer.DriverPostgres, dsn)
	ctx := context.Background()
	if err := inventory.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	code := func(p int) string { return fmt.Sprintf("POOL-%02d", p) }
	catalogue := make([]inventory.Product, products)
	for p := range catalogue {
		catalogue[p] = inventory.Product{Code: code(p), Name: "pool"}
	}
	if err := inventory.Insert(ctx, db, catalogue); err != nil {
		t.Fatal(err)
	}
	topic := consumertest.UniqueName("pool")
	brokers := consumertest.Kfake(t, partitions, topic, topic+".dlq")
	cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverPostgres, dsn)
	cfg.Database.MaxConnections = 1
	r := startConsumer(t, cfg)

	// Message i updates product i%40 on partition (i%40)%8; every tenth is invalid.
	want := map[string]int64{}
	invalid := 0
	p := consumertest.Producer(t, brokers)
	for i := range messages {
		prod := i % products
		count := int64(i)
		if i%10 == 9 {
			count, invalid = -1, invalid+1
		} else {
			want[code(prod)] = count
		}
		v := fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, code(prod), count)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: int32(prod % partitions),
			Key: sarama.StringEncoder(code(prod)), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	var processed, deadLettered int
	r.out.waitFor(t, fmt.Sprintf("%d outcomes", messages), 2*time.Minute, func() bool {
		processed, deadLettered = 0, 0
		for _, e := range r.out.byKey {
			switch e.Type {
			case consumer.EventProcessed:
				processed++
			case consumer.EventDeadLettered:
				deadLettered++
			}
		}
		return processed+deadLettered == messages
	})
	if processed != messages-invalid || deadLettered != invalid {
		t.Errorf("%d applied and %d dead-lettered, want %d and %d", processed, deadLettered, messages-invalid, invalid)
	}
	var rows []inventory.Product
	if err := db.Where("code LIKE ?", "POOL-%").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if row.Inventory != want[row.Code] {
			t.Errorf("inventory of %s = %d, want %d (its last valid update)", row.Code, row.Inventory, want[row.Code])
		}
	}
	if letters := consumertest.ReadTopic(t, brokers, topic+".dlq", invalid, 0); len(letters) != invalid {
		t.Errorf("the dead-letter topic has %d letters, want %d", len(letters), invalid)
	}
}
