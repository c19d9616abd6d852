package consumer

import (
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// deadLetterTopicWait bounds how long a consumer that created the dead-letter topic waits
// for the brokers to answer for it.
const deadLetterTopicWait = 10 * time.Second

// declareDeadLetterTopic reads the source and dead-letter topics at start. With
// deadLetter.create it creates a missing dead-letter topic with the source's partition count
// and replication factor (another replica creating it first is fine); a failure is
// transient, so connect retries it. Without it, what cannot be read only costs the
// partition affinity. It returns the dead-letter producer's partitioner and records on the
// status board what is in use.
func (c *Consumer) declareDeadLetterTopic(cfg *sarama.Config) (sarama.PartitionerConstructor, error) {
	dlq, create := c.cfg.DeadLetter.Topic, c.cfg.DeadLetter.Create
	st, sourcePartitions, err := describeDeadLetterTopic(c.cfg.Kafka.BootstrapServers, cfg, c.cfg.Kafka.Topic, dlq, create)
	if err != nil {
		if create {
			return nil, Transient(ClassDeadLetterUnavailable, err)
		}
		c.log.Warn("Cannot read the dead-letter topic's partitions; dead letters go by key hash", "deadLetterTopic", dlq, "error", err)
	}
	if st.Created {
		c.log.Info("Created the dead-letter topic", "deadLetterTopic", dlq, "partitions", st.Partitions)
	}
	c.status.setDeadLetter(st)
	return newDeadLetterPartitioner(sourcePartitions), nil
}

// describeDeadLetterTopic returns the dead-letter topic's status (creating it first when
// create is set and it is missing) and the source's partition count (0 when not known).
func describeDeadLetterTopic(brokers []string, cfg *sarama.Config, source, dlq string, create bool) (DeadLetterStatus, int32, error) {
	st := DeadLetterStatus{Topic: dlq}
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		return st, 0, fmt.Errorf("describe the topics %s and %s: %w", source, dlq, err)
	}
	defer func() { _ = admin.Close() }()
	md, err := admin.DescribeTopics([]string{source, dlq})
	if err != nil {
		return st, 0, fmt.Errorf("describe the topics %s and %s: %w", source, dlq, err)
	}
	var src, dl *sarama.TopicMetadata
	for _, t := range md {
		switch t.Name {
		case source:
			src = t
		case dlq:
			dl = t
		}
	}
	if src == nil || !errors.Is(src.Err, sarama.ErrNoError) || len(src.Partitions) == 0 {
		return st, 0, fmt.Errorf("describe the source topic %s: %w", source, topicErr(src))
	}
	sourcePartitions := int32(len(src.Partitions))
	switch {
	case dl != nil && errors.Is(dl.Err, sarama.ErrNoError):
		st.Partitions = int32(len(dl.Partitions))
	case create && dl != nil && errors.Is(dl.Err, sarama.ErrUnknownTopicOrPartition):
		detail := &sarama.TopicDetail{NumPartitions: sourcePartitions, ReplicationFactor: int16(len(src.Partitions[0].Replicas))}
		err := admin.CreateTopic(dlq, detail, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return st, sourcePartitions, fmt.Errorf("create the dead-letter topic %s (%d partitions, replication factor %d): %w",
				dlq, detail.NumPartitions, detail.ReplicationFactor, err)
		}
		st.Created = err == nil
		n, err := waitForPartitions(admin, dlq)
		if err != nil {
			return st, sourcePartitions, err
		}
		st.Partitions = n
	default:
		return st, sourcePartitions, fmt.Errorf("describe the dead-letter topic %s: %w", dlq, topicErr(dl))
	}
	st.Affinity = st.Partitions >= sourcePartitions
	return st, sourcePartitions, nil
}

// waitForPartitions waits until the brokers answer for a topic just created and returns
// its partition count.
func waitForPartitions(admin sarama.ClusterAdmin, topic string) (int32, error) {
	deadline := time.Now().Add(deadLetterTopicWait)
	for {
		md, err := admin.DescribeTopics([]string{topic})
		if err == nil && len(md) == 1 && errors.Is(md[0].Err, sarama.ErrNoError) && len(md[0].Partitions) > 0 {
			return int32(len(md[0].Partitions)), nil
		}
		if err == nil && len(md) == 1 {
			err = topicErr(md[0])
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the dead-letter topic %s was created but not described within %s: %w", topic, deadLetterTopicWait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func topicErr(t *sarama.TopicMetadata) error {
	switch {
	case t == nil:
		return errors.New("not in the brokers' answer")
	case !errors.Is(t.Err, sarama.ErrNoError):
		return t.Err
	default:
		return errors.New("no partitions")
	}
}

// deadLetterPartitioner sends a dead letter to its message's partition number (the
// record's Partition, which Write sets) when the dead-letter topic has at least as many
// partitions as the source, so that a replay keeps each partition's order; otherwise, or
// when the source's partition count is not known (0), by key hash as sarama's default.
type deadLetterPartitioner struct {
	sourcePartitions int32
	hash             sarama.Partitioner
}

func newDeadLetterPartitioner(sourcePartitions int32) sarama.PartitionerConstructor {
	return func(topic string) sarama.Partitioner {
		return &deadLetterPartitioner{sourcePartitions: sourcePartitions, hash: sarama.NewHashPartitioner(topic)}
	}
}

func (p *deadLetterPartitioner) Partition(m *sarama.ProducerMessage, numPartitions int32) (int32, error) {
	if p.sourcePartitions > 0 && numPartitions >= p.sourcePartitions && m.Partition >= 0 && m.Partition < numPartitions {
		return m.Partition, nil
	}
	return p.hash.Partition(m, numPartitions)
}

// RequiresConsistency: a letter's partition must not depend on which partitions are
// writable now.
func (p *deadLetterPartitioner) RequiresConsistency() bool { return true }
