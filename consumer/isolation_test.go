package consumer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// TestAnAbortedTransactionIsNeverApplied: a producer using Kafka transactions commits one
// update and then aborts a later one. The consumer reads committed records only: the
// aborted update never reaches the handler, and the product keeps the committed value.
func TestAnAbortedTransactionIsNeverApplied(t *testing.T) {
	for _, k := range []struct {
		name  string
		start func(testing.TB, int32, ...string) []string
	}{{"kfake", consumertest.Kfake}, {"Apache Kafka", consumertest.RealKafka}} {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			topic := consumertest.UniqueName("txn")
			brokers := k.start(t, 1, topic, topic+".dlq")
			dsn := consumertest.SQLiteDSN(t)
			db := consumertest.OpenDatabase(t, consumer.DriverSQLite, dsn)
			ctx := context.Background()
			if err := inventory.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			if err := inventory.Insert(ctx, db, []inventory.Product{{Code: "TX-1", Name: "t"}}); err != nil {
				t.Fatal(err)
			}

			sc := sarama.NewConfig()
			sc.Version = sarama.DefaultVersion
			sc.Producer.Idempotent = true
			sc.Producer.RequiredAcks = sarama.WaitForAll
			sc.Producer.Return.Successes = true
			sc.Producer.Transaction.ID = consumertest.UniqueName("txn-producer")
			sc.Net.MaxOpenRequests = 1
			p, err := sarama.NewSyncProducer(brokers, sc)
			if err != nil {
				t.Fatalf("transactional producer: %v", err)
			}
			defer p.Close()
			inTxn := func(count int, commit bool) {
				t.Helper()
				if err := p.BeginTxn(); err != nil {
					t.Fatal(err)
				}
				value := fmt.Sprintf(`{"product_code": "TX-1", "inventory_count": %d}`, count)
				if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)}); err != nil {
					t.Fatal(err)
				}
				end := p.CommitTxn
				if !commit {
					end = p.AbortTxn
				}
				if err := end(); err != nil {
					t.Fatal(err)
				}
			}
			inTxn(22, true)
			inTxn(11, false)
			inTxn(33, true) // so the consumer has read past the aborted one when it is checked

			// Offsets: 0 the committed 22, 1 its commit marker, 2 the aborted 11, 3 its abort
			// marker, 4 the committed 33.
			r := startConsumer(t, consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn))
			defer r.stop()
			for _, off := range []int64{0, 4} {
				if e := r.out.outcome(t, 0, off); e.Type != consumer.EventProcessed {
					t.Fatalf("offset %d: %s (%v), want processed", off, e.Type, e.Err)
				}
			}
			r.out.mu.Lock()
			aborted, seen := r.out.byKey["0/2"]
			r.out.mu.Unlock()
			if seen {
				t.Fatalf("the aborted update at offset 2 reached the handler: %s", aborted.Type)
			}
			if inv := inventoryOf(t, db, "TX-1"); inv != 33 {
				t.Fatalf("inventory %d, want 33", inv)
			}
		})
	}
}
