package consumer_test

import (
	"fmt"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
)

// TestAPartitionOfAnotherTopicIncarnationStartsOverAndSkipsNothing: the database's stored
// offsets belong to the topic as it was on one cluster; the subscription moves to another
// cluster whose topic of the same name starts again at offset 0 (the same happens when a
// topic is deleted and created again). Every message of the new topic is applied: a stored
// offset of another incarnation of the topic must not make the runtime skip them as done.
func TestAPartitionOfAnotherTopicIncarnationStartsOverAndSkipsNothing(t *testing.T) {
	type kafka struct {
		name string
		// first starts the topic (and its dead-letter topic); again gives brokers on which
		// the topic of that name starts over.
		first func(t *testing.T, topic string) []string
		again func(t *testing.T, brokers []string, topic string) []string
	}
	kfakeClusters := kafka{"another kfake cluster",
		func(t *testing.T, topic string) []string { return consumertest.Kfake(t, 1, topic, topic+".dlq") },
		func(t *testing.T, _ []string, topic string) []string {
			return consumertest.Kfake(t, 1, topic, topic+".dlq")
		},
	}
	recreated := kafka{"Apache Kafka, the topic deleted and created again",
		func(t *testing.T, topic string) []string { return consumertest.RealKafka(t, 1, topic, topic+".dlq") },
		func(t *testing.T, brokers []string, topic string) []string {
			consumertest.RecreateTopic(t, brokers, 1, topic)
			return brokers
		},
	}
	type run struct {
		kafka
		consumertest.Database
	}
	var runs []run
	for _, b := range consumertest.Databases {
		runs = append(runs, run{kfakeClusters, b})
	}
	runs = append(runs, run{recreated, consumertest.Databases[len(consumertest.Databases)-1]})
	for _, r := range runs {
		b := r.Database
		t.Run(r.kafka.name+"/"+b.Name, func(t *testing.T) {
			t.Parallel()
			dsn := b.DSN(t)
			const n = 8
			codes := make([]string, n)
			for i := range codes {
				codes[i] = fmt.Sprintf("P-%d", i)
			}
			db := catalogue(t, b.Driver, dsn, codes)
			topic := consumertest.UniqueName("moved")
			update := func(i, count int) string {
				return fmt.Sprintf(`{"product_code": "P-%d", "inventory_count": %d}`, i, count)
			}

			// The first cluster: n updates applied, stored offset n-1.
			before := r.first(t, topic)
			var values []string
			for i := range n {
				values = append(values, update(i, 10+i))
			}
			consumertest.Produce(t, consumertest.Producer(t, before), topic, values...)
			cfg := consumertest.Config(before, topic, topic+".dlq", b.Driver, dsn)
			c := startConsumer(t, cfg)
			c.out.outcome(t, 0, n-1)
			c.stop()
			if got := storedOffset(t, db, cfg, 0); got != n-1 {
				t.Fatalf("stored offset %d after the first cluster, want %d", got, n-1)
			}

			// The second cluster: the same topic name, offsets from 0 again.
			after := r.again(t, before, topic)
			consumertest.Produce(t, consumertest.Producer(t, after), topic, update(0, 100), update(1, 101), update(2, 102))
			cfg.Kafka.BootstrapServers = after
			c = startConsumer(t, cfg)
			defer c.stop()
			for off := range int64(3) {
				if ev := c.out.outcome(t, 0, off); ev.Type != consumer.EventProcessed {
					t.Fatalf("offset %d on the second cluster: %s (%v), want processed", off, ev.Type, ev.Err)
				}
			}
			for i := range 3 {
				if got := inventoryOf(t, db, fmt.Sprintf("P-%d", i)); got != int64(100+i) {
					t.Fatalf("P-%d inventory %d, want %d", i, got, 100+i)
				}
			}
			if got := storedOffset(t, db, cfg, 0); got != 2 {
				t.Fatalf("stored offset %d after the second cluster, want 2", got)
			}
		})
	}
}
