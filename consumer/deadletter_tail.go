package consumer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// A crash after a batch's dead letters were acknowledged and before its transaction
// committed leaves letters in the dead-letter topic for messages whose offsets are past the
// stored offset; the next owner of the partition rejects them again. Before it writes its
// first dead letters for the offsets such a batch can span (the stored offset at the claim's
// start plus batch.maxMessages), a claim reads the tail of every dead-letter partition once
// and does not write a letter that is already there. The tail read is bounded
// (deadLetterTailRecords per dead-letter partition, deadLetterTailTimeout in all); when it
// fails or the letter is older than the tail, the letter is written again: dead letters stay
// at least once, never lost.
const (
	deadLetterTailRecords = 2000
	deadLetterTailTimeout = 10 * time.Second
)

// checkDeadLetterTail adds to cl.deadLettered the offsets of this claim's partition in
// (from, to] that have a dead letter of this consumer group in the tail of the dead-letter
// topic.
func (cl *claim) checkDeadLetterTail(ctx context.Context, from, to int64) {
	c := cl.c
	ctx, cancel := context.WithTimeout(ctx, deadLetterTailTimeout)
	defer cancel()
	found, err := c.readDeadLetterTail(ctx, func(d DeadLetter) bool {
		return d.ConsumerGroup == cl.key.Group && d.OriginalTopic == cl.key.Topic &&
			d.OriginalPartition == cl.key.Partition && d.OriginalOffset > from && d.OriginalOffset <= to
	})
	if err != nil {
		c.log.Warn("Cannot read the dead-letter topic's tail; a dead letter written before a crash may be written again",
			"partition", cl.key.Partition, "error", err)
	}
	for _, off := range found {
		cl.deadLettered[off] = true
	}
	if len(found) > 0 {
		c.log.Info("Dead letters of an earlier attempt are in the dead-letter topic; not writing them again",
			"partition", cl.key.Partition, "count", len(found))
	}
}

// readDeadLetterTail returns the original offsets of the dead letters in the last
// deadLetterTailRecords records of each dead-letter partition that match.
func (c *Consumer) readDeadLetterTail(ctx context.Context, match func(DeadLetter) bool) ([]int64, error) {
	client, err := sarama.NewClient(c.cfg.Kafka.BootstrapServers, c.saramaCfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = client.Close() }()
	topic := c.cfg.DeadLetter.Topic
	partitions, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer func() { _ = consumer.Close() }()
	var found []int64
	for _, p := range partitions {
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return found, fmt.Errorf("end of %s/%d: %w", topic, p, err)
		}
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return found, fmt.Errorf("start of %s/%d: %w", topic, p, err)
		}
		start := max(oldest, newest-deadLetterTailRecords)
		if start >= newest {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			return found, fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
		err = func() error {
			defer func() { _ = pc.Close() }()
			for {
				select {
				case m := <-pc.Messages():
					if d, _ := ParseDeadLetter(HeadersFromSarama(m.Headers)); match(d) {
						found = append(found, d.OriginalOffset)
					}
					if m.Offset >= newest-1 {
						return nil
					}
				case err := <-pc.Errors():
					return err
				case <-ctx.Done():
					return fmt.Errorf("read %s/%d up to offset %s: %w", topic, p, strconv.FormatInt(newest, 10), ctx.Err())
				}
			}
		}()
		if err != nil {
			return found, err
		}
	}
	return found, nil
}
