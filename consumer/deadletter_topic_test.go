package consumer_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
)

// sourcePartitions is the source topic's partition count in these tests: not Apache Kafka's
// num.partitions (3 in hack/kafka.sh), so a topic the broker created on its own shows.
const sourcePartitions = 4

// declareBrokers are kfake without automatic topic creation (as a cluster that leaves
// topics to their owners) and Apache Kafka when KAFKASUB_TEST_KAFKA_BROKERS names one; each
// has the source topic of sourcePartitions partitions.
var declareBrokers = []struct {
	name  string
	start func(t *testing.T, topic string) []string
}{
	{"kfake", func(t *testing.T, topic string) []string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(sourcePartitions, topic))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()
	}},
	{"kafka", func(t *testing.T, topic string) []string { return consumertest.RealKafka(t, sourcePartitions, topic) }},
}

func describeTopic(t *testing.T, brokers []string, topic string) *sarama.TopicMetadata {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(md) != 1 {
		t.Fatalf("describe %s: %v", topic, err)
	}
	return md[0]
}

// TestDeadLetterCreateMakesTheTopicLikeTheSource: with deadLetter.create a missing
// dead-letter topic is created with the source's partitions and replication factor, and a
// dead letter of partition 2 lands in partition 2.
func TestDeadLetterCreateMakesTheTopicLikeTheSource(t *testing.T) {
	t.Parallel()
	for _, k := range declareBrokers {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			topic := consumertest.UniqueName("declare")
			brokers := k.start(t, topic)
			dlq := topic + ".dlq"
			dsn, _ := seededSQLite(t)
			cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, dsn)
			cfg.DeadLetter.Create = true
			r := startConsumer(t, cfg)

			md := describeTopic(t, brokers, dlq)
			if md.Err != sarama.ErrNoError || len(md.Partitions) != sourcePartitions || len(md.Partitions[0].Replicas) != 1 {
				t.Fatalf("dead-letter topic %s: %v, %d partitions, want %d partitions of replication factor 1", dlq, md.Err, len(md.Partitions), sourcePartitions)
			}
			want := consumer.DeadLetterStatus{Topic: dlq, Partitions: sourcePartitions, Affinity: true, Created: true}
			if got := r.c.Status().DeadLetter; got != want {
				t.Fatalf("status deadLetter %+v, want %+v", got, want)
			}

			_, off, err := consumertest.Producer(t, brokers).SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 2, Value: sarama.StringEncoder("this is no good")})
			if err != nil {
				t.Fatal(err)
			}
			if ev := r.out.outcome(t, 2, off); ev.Type != consumer.EventDeadLettered {
				t.Fatalf("the invalid message: %s, want dead-lettered", ev.Type)
			}
			recs := consumertest.ReadTopic(t, brokers, dlq, 1, 30*time.Second)
			if len(recs) != 1 || recs[0].Partition != 2 || string(recs[0].Value) != "this is no good" {
				t.Fatalf("dead-letter topic holds %d records (first in partition %d), want the letter in partition 2", len(recs), recs[0].Partition)
			}
		})
	}
}

// TestDeadLetterWithoutCreateLeavesAMissingTopicAlone: without deadLetter.create the consumer
// creates nothing; a dead letter waits (retried, nothing lost) until the topic exists, which
// on Apache Kafka with auto.create.topics.enable is at the first write.
func TestDeadLetterWithoutCreateLeavesAMissingTopicAlone(t *testing.T) {
	t.Parallel()
	for _, k := range declareBrokers {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			topic := consumertest.UniqueName("nodeclare")
			brokers := k.start(t, topic)
			dlq := topic + ".dlq"
			dsn, _ := seededSQLite(t)
			cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, dsn)
			r := startConsumer(t, cfg)
			if got := r.c.Status().DeadLetter; got != (consumer.DeadLetterStatus{Topic: dlq}) {
				t.Fatalf("status deadLetter %+v, want only the topic: it did not exist at start", got)
			}
			if md := describeTopic(t, brokers, dlq); md.Err != sarama.ErrUnknownTopicOrPartition {
				t.Fatalf("dead-letter topic %s: %v, want it still missing after the start", dlq, md.Err)
			}

			_, off, err := consumertest.Producer(t, brokers).SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 1, Value: sarama.StringEncoder("this is no good")})
			if err != nil {
				t.Fatal(err)
			}
			if k.name == "kfake" {
				r.out.waitFor(t, "a retry of the dead letter", 60*time.Second, func() bool { return r.out.retries > 0 })
				consumertest.CreateTopics(t, brokers, 1, dlq)
			}
			if ev := r.out.outcome(t, 1, off); ev.Type != consumer.EventDeadLettered {
				t.Fatalf("the invalid message: %s, want dead-lettered", ev.Type)
			}
			if recs := consumertest.ReadTopic(t, brokers, dlq, 1, 30*time.Second); len(recs) != 1 || string(recs[0].Value) != "this is no good" {
				t.Fatalf("dead-letter topic holds %d records, want the letter", len(recs))
			}
		})
	}
}
