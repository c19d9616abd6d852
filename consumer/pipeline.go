package consumer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer/offsetstore"
)

// The pipeline, outermost layer first; each is a file of its own:
//
//	claim loop (this file)   takes what is fetched as a batch, publishes outcomes, marks offsets
//	retry (retry.go)         backs off on transient errors, pausing the partition; RetriesExhausted
//	narrow (narrow.go)       splits a batch whose failure is permanent until the message is found
//	transact (transact.go)   one transaction: stored offset compare-and-set, handler (panics
//	                         recovered, timeout), dead letters acknowledged, commit

// groupHandler is the sarama.ConsumerGroupHandler of a Consumer.
type groupHandler struct {
	c *Consumer

	mu       sync.Mutex
	stored   map[int32]int64   // the session's stored offsets as Setup read them
	topicIDs map[string]string // the claimed topics' IDs as Setup read them
}

// Setup reads the claimed topics' IDs and the stored offsets of the claimed partitions, and
// moves each claim's start past its stored offset when the group's committed offset is
// behind it (the process was killed after a commit to the database and before the commit
// to Kafka). Without the topic's ID the session cannot tell a stored offset of this topic
// from one of an earlier topic of the same name, so it ends and the group is joined again.
func (g *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	c := g.c
	stored := map[int32]int64{}
	ids := map[string]string{}
	if c.db != nil {
		for topic := range s.Claims() {
			id, err := topicID(c.client, topic)
			if err != nil {
				return err
			}
			ids[topic] = id
		}
		for topic, partitions := range s.Claims() {
			k := offsetstore.Key{Group: c.cfg.Kafka.ConsumerGroup, Topic: topic, TopicID: ids[topic]}
			got, err := c.store.Load(s.Context(), c.db, k, partitions)
			if err != nil { // each claim reads it again before its first batch
				c.log.Warn("Cannot read the stored offsets; the claims read them before their first batch", "error", ClassifyDatabaseError(err))
				break
			}
			for p, off := range got {
				stored[p] = off
				if off != offsetstore.None {
					s.MarkOffset(topic, p, off+1, "")
				}
			}
		}
	}
	g.mu.Lock()
	g.stored, g.topicIDs = stored, ids
	g.mu.Unlock()
	c.joined.Store(true)
	c.log.Info("Joined the consumer group", "claims", s.Claims(), "generation", s.GenerationID())
	c.monitor.Publish(Event{Type: EventGroupJoined, Subscription: c.cfg.Subscription,
		Group: c.cfg.Kafka.ConsumerGroup, Claims: s.Claims()})
	return nil
}

func (g *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	g.c.joined.Store(false)
	g.c.monitor.Publish(Event{Type: EventGroupLeft, Subscription: g.c.cfg.Subscription,
		Group: g.c.cfg.Kafka.ConsumerGroup})
	return nil
}

// ConsumeClaim takes consecutive messages of the partition as batches and brings each to
// a durable outcome before it marks the offsets. It stops taking batches the moment the
// session ends. It never returns a processing error: that would end the session and loop
// on the same message.
func (g *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, sc sarama.ConsumerGroupClaim) error {
	ctx := s.Context()
	g.mu.Lock()
	id := g.topicIDs[sc.Topic()]
	g.mu.Unlock()
	cl := g.c.newClaim(s, sc, id, g.storedOffset(sc.Partition()))
	var untrack func()
	cl.status, untrack = g.c.trackClaim(sc, cl.stored)
	defer untrack()
	msgs := sc.Messages()
	for {
		var first *sarama.ConsumerMessage
		select {
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			first = m
		case <-ctx.Done():
			return nil
		}
		batch := g.c.collect(ctx, first, msgs)
		if ctx.Err() != nil || !cl.process(ctx, batch) {
			return nil
		}
	}
}

func (g *groupHandler) storedOffset(p int32) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if off, ok := g.stored[p]; ok {
		return off
	}
	return unknownOffset
}

// collect adds to first the messages already fetched, up to batch.maxMessages: a batch is
// what is waiting, so a caught-up partition does not wait. With batch.maxWait set it waits
// up to that long for a batch to fill.
func (c *Consumer) collect(ctx context.Context, first *sarama.ConsumerMessage, msgs <-chan *sarama.ConsumerMessage) []*Message {
	max := c.cfg.Batch.MaxMessages
	batch := make([]*Message, 0, min(max, 64))
	batch = append(batch, fromSarama(first))
	var timeout <-chan time.Time
	if w := c.cfg.Batch.MaxWait.Duration; w > 0 {
		t := time.NewTimer(w)
		defer t.Stop()
		timeout = t.C
	}
	for len(batch) < max {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, fromSarama(m))
			continue
		default:
		}
		if timeout == nil {
			return batch
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, fromSarama(m))
		case <-timeout:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

func fromSarama(m *sarama.ConsumerMessage) *Message {
	return &Message{
		Topic:     m.Topic,
		Partition: m.Partition,
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
		Headers:   HeadersFromSarama(m.Headers),
		Timestamp: m.Timestamp,
	}
}

// unknownOffset: the claim has not read the partition's stored offset yet.
const unknownOffset int64 = -2

// claim is the pipeline's state for one partition in one session.
type claim struct {
	c    *Consumer
	sess sarama.ConsumerGroupSession
	key  offsetstore.Key
	// stored is the partition's stored offset as this claim last read or wrote it.
	stored int64
	// floor is the lowest stored offset that leaves no gap before the next batch: every
	// offset from floor+1 up to the batch is settled or does not exist. None: the claim's
	// start is the group's position, whatever the store says.
	floor int64
	// started is false until the claim's first batch has an outcome.
	started bool
	// deadLettered holds offsets whose dead letter is acknowledged but whose transaction
	// has not committed yet, so that a retry does not write them again.
	deadLettered map[int64]bool
	// attempt is the current attempt of the batch in flight (1-based), for dead letters.
	attempt int
	// tailFrom is the offset before the claim's first message (unknownOffset until the
	// stored offset is known); tailChecked: the dead-letter topic's tail has been read for
	// letters of (tailFrom, tailFrom+batch.maxMessages] (deadletter_tail.go).
	tailFrom    int64
	tailChecked bool
	// status is the partition's entry on the status board (nil where a test drives the
	// layers without a group).
	status *partitionStatus
}

func (c *Consumer) newClaim(s sarama.ConsumerGroupSession, sc sarama.ConsumerGroupClaim, topicID string, stored int64) *claim {
	floor := offsetstore.None
	if off := sc.InitialOffset(); off >= 0 {
		floor = off - 1
	}
	cl := &claim{
		c:            c,
		sess:         s,
		key:          offsetstore.Key{Group: c.cfg.Kafka.ConsumerGroup, Topic: sc.Topic(), TopicID: topicID, Partition: sc.Partition()},
		stored:       stored,
		floor:        floor,
		deadLettered: map[int64]bool{},
		tailFrom:     unknownOffset,
	}
	cl.noteStart()
	return cl
}

// noteStart records where the claim starts once the stored offset is known.
func (cl *claim) noteStart() {
	if cl.tailFrom == unknownOffset && cl.stored != unknownOffset {
		cl.tailFrom = max(cl.stored, cl.floor)
	}
}

// process brings batch to a durable outcome, publishes it and marks the offsets. It
// returns false when the session ended first (nothing of the batch is marked; the
// messages come again) or the claim must end.
func (cl *claim) process(ctx context.Context, batch []*Message) bool {
	start := time.Now()
	results, ok := cl.retry(ctx, batch)
	if !ok {
		return false
	}
	cl.started = true
	c := cl.c
	applied := false
	skipped := int64(0)
	latency := time.Since(start)
	for i, m := range batch {
		switch r := results[i]; {
		case r == nil:
			applied = true
			c.publishMsg(EventProcessed, m, Event{Attempt: cl.attempt, Latency: latency})
		case errors.Is(r, errAlreadyApplied):
			skipped++
		default:
			outcome := EventDeadLettered
			if c.actionFor(r) == ActionSkip {
				outcome = EventSkipped
			}
			c.publishMsg(EventErrorOccurred, m, Event{Err: r, Class: ClassOf(r), Permanent: true, Attempt: cl.attempt})
			c.publishMsg(outcome, m, Event{Err: r, Class: ClassOf(r), Permanent: true, Attempt: cl.attempt, Latency: latency})
		}
	}
	if applied && c.db != nil {
		c.setDBUp(true)
	}
	last := batch[len(batch)-1]
	cl.sess.MarkOffset(last.Topic, last.Partition, last.Offset+1, "")
	if skipped > 0 && c.status != nil {
		c.status.skipped.Add(skipped)
	}
	if cl.status != nil {
		cl.status.settled(last.Offset+1, cl.stored)
	}
	return true
}

// publishMsg publishes an event about message m, filling in the coordinates.
func (c *Consumer) publishMsg(t EventType, m *Message, e Event) {
	e.Type = t
	e.Subscription = c.cfg.Subscription
	e.Group = c.cfg.Kafka.ConsumerGroup
	e.Topic, e.Partition, e.Offset = m.Topic, m.Partition, m.Offset
	c.monitor.Publish(e)
}
