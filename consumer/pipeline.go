package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/IBM/sarama"
)

// groupHandler is the sarama.ConsumerGroupHandler of a Consumer.
type groupHandler struct{ c *Consumer }

func (g *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	g.c.joined.Store(true)
	g.c.log.Info("Joined the consumer group", "claims", s.Claims(), "generation", s.GenerationID())
	g.c.monitor.Publish(Event{Type: EventGroupJoined, Subscription: g.c.cfg.Subscription,
		Group: g.c.cfg.Kafka.ConsumerGroup, Claims: s.Claims()})
	return nil
}

func (g *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	g.c.joined.Store(false)
	g.c.monitor.Publish(Event{Type: EventGroupLeft, Subscription: g.c.cfg.Subscription,
		Group: g.c.cfg.Kafka.ConsumerGroup})
	return nil
}

// ConsumeClaim takes consecutive messages of the partition as batches and processes each
// batch to a durable outcome before it marks the offsets. It never returns a processing
// error: that would end the session and loop on the same message.
func (g *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := s.Context()
	msgs := claim.Messages()
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
		batch := g.collect(ctx, first, msgs)
		if !g.c.process(s, claim.Topic(), claim.Partition(), batch) {
			return nil
		}
	}
}

// collect adds to first the messages already waiting, up to batch.maxMessages, waiting at
// most batch.maxWait for more.
func (g *groupHandler) collect(ctx context.Context, first *sarama.ConsumerMessage, msgs <-chan *sarama.ConsumerMessage) []*Message {
	max := g.c.cfg.Batch.MaxMessages
	batch := make([]*Message, 0, min(max, 64))
	batch = append(batch, fromSarama(first))
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
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
		if g.c.cfg.Batch.MaxWait.Duration <= 0 {
			return batch
		}
		if timer == nil {
			timer = time.NewTimer(g.c.cfg.Batch.MaxWait.Duration)
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, fromSarama(m))
		case <-timer.C:
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

// process brings batch to a durable outcome and marks its offsets. It returns false when
// the session ended first (nothing of the batch is marked; the messages come again).
func (c *Consumer) process(s sarama.ConsumerGroupSession, topic string, partition int32, batch []*Message) bool {
	ctx := s.Context()
	start := time.Now()
	backoff := c.cfg.Retry.InitialBackoff.Duration
	retrying := false
	defer func() {
		if retrying {
			c.retrying.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		results, err := c.handle(ctx, partition, batch)
		if err == nil {
			return c.settle(s, batch, results, attempt, start)
		}
		class := ClassOf(err)
		if class == ClassDatabaseUnavailable {
			c.setDBUp(false)
		}
		first := batch[0]
		c.publishMsg(EventErrorOccurred, first, Event{Err: err, Class: class, Attempt: attempt})
		if max := c.cfg.Retry.MaxAttempts; max > 0 && attempt >= max {
			return c.settle(s, batch, c.exhausted(ctx, partition, batch, attempt, err), attempt, start)
		}
		if !retrying {
			retrying = true
			c.retrying.Add(1)
		}
		c.publishMsg(EventRetrying, first, Event{Err: err, Class: class, Attempt: attempt, Backoff: backoff})
		c.log.Warn("Transient failure; pausing the partition and retrying", "partition", partition,
			"offset", first.Offset, "messages", len(batch), "class", class, "error", err,
			"attempt", attempt, "backoff", backoff)
		if !c.pause(ctx, topic, partition, backoff) {
			return false
		}
		backoff = min(2*backoff, c.cfg.Retry.MaxBackoff.Duration)
	}
}

// exhausted gives each message of a batch whose retries are spent its own outcome: a
// batch of one (or a batch whose messages still fail one by one) is dead-lettered with
// ClassRetriesExhausted; otherwise every message gets one last attempt on its own, so a
// message that works, or fails permanently, is not dead-lettered for its neighbours.
func (c *Consumer) exhausted(ctx context.Context, partition int32, batch []*Message, attempts int, last error) []error {
	exhausted := func(err error) error {
		return Permanent(ClassRetriesExhausted, fmt.Errorf("retries exhausted after %d attempts: %w", attempts, err))
	}
	results := make([]error, len(batch))
	for i := range batch {
		if len(batch) == 1 {
			results[i] = exhausted(last)
			continue
		}
		r, err := c.handle(ctx, partition, batch[i:i+1])
		if err != nil {
			results[i] = exhausted(err)
		} else {
			results[i] = r[0]
		}
	}
	return results
}

// handle calls the handler with a context that survives the session's end (so a shutdown
// lets the batch finish) but is bounded by the handler timeout. A result that is not
// permanent becomes the batch error; a permanent batch error belongs to every message. A
// panic is isolated: the batch is handled again one message at a time, and the message
// that panics gets a permanent ClassHandlerPanic result.
func (c *Consumer) handle(sessCtx context.Context, partition int32, batch []*Message) ([]error, error) {
	results, err, panicked := c.call(sessCtx, partition, batch)
	if !panicked || len(batch) == 1 {
		return results, err
	}
	results = make([]error, len(batch))
	for i := range batch {
		r, err, _ := c.call(sessCtx, partition, batch[i:i+1])
		if err != nil {
			return nil, err
		}
		results[i] = r[0]
	}
	return results, nil
}

// call is one HandleBatch call with its results normalised; panicked reports a recovered
// panic (then every result is a ClassHandlerPanic error).
func (c *Consumer) call(sessCtx context.Context, partition int32, batch []*Message) (results []error, err error, panicked bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(sessCtx), c.opts.handlerTimeout)
	defer cancel()
	c.busyMu.Lock()
	c.busySince[partition] = time.Now()
	c.busyMu.Unlock()
	defer func() {
		c.busyMu.Lock()
		delete(c.busySince, partition)
		c.busyMu.Unlock()
		if r := recover(); r != nil {
			c.log.Error("Handler panicked", "panic", r, "offset", batch[0].Offset, "messages", len(batch), "stack", string(debug.Stack()))
			perr := Permanentf(ClassHandlerPanic, "handler panicked: %v", r)
			results, err, panicked = make([]error, len(batch)), nil, true
			for i := range results {
				results[i] = perr
			}
		}
	}()
	results, err = c.handler.HandleBatch(ctx, batch)
	if err != nil {
		if IsPermanent(err) {
			results = make([]error, len(batch))
			for i := range results {
				results[i] = err
			}
			return results, nil, false
		}
		return nil, err, false
	}
	if len(results) != len(batch) {
		return nil, Transient(ClassUnclassified, fmt.Errorf("handler returned %d results for %d messages", len(results), len(batch))), false
	}
	for _, r := range results {
		if r != nil && !IsPermanent(r) {
			return nil, r, false
		}
	}
	return results, nil, false
}

// settle dead-letters the messages with a permanent result, then marks the batch's
// offsets and publishes the outcomes. It returns false if the session ended before the
// dead-letter topic acknowledged.
func (c *Consumer) settle(s sarama.ConsumerGroupSession, batch []*Message, results []error, attempts int, start time.Time) bool {
	var failed []*Message
	var reasons []error
	for i, r := range results {
		if r != nil {
			failed = append(failed, batch[i])
			reasons = append(reasons, r)
			c.publishMsg(EventErrorOccurred, batch[i], Event{Err: r, Class: ClassOf(r), Permanent: true, Attempt: attempts})
		}
	}
	if len(failed) > 0 && !c.deadLetter(s.Context(), failed, reasons, attempts) {
		return false
	}
	if len(failed) < len(batch) {
		c.setDBUp(true)
	}
	last := batch[len(batch)-1]
	s.MarkOffset(last.Topic, last.Partition, last.Offset+1, "")
	latency := time.Since(start)
	for i, m := range batch {
		if results[i] == nil {
			c.publishMsg(EventProcessed, m, Event{Attempt: attempts, Latency: latency})
		} else {
			c.publishMsg(EventDeadLettered, m, Event{Err: results[i], Class: ClassOf(results[i]), Permanent: true, Attempt: attempts, Latency: latency})
		}
	}
	return true
}

// deadLetter writes msgs to the dead-letter topic and waits for the acknowledgement
// (acks=all), retrying what failed with backoff. It returns false if ctx ended first.
func (c *Consumer) deadLetter(ctx context.Context, msgs []*Message, reasons []error, attempts int) bool {
	build := func(i int) *sarama.ProducerMessage {
		m := msgs[i]
		return deadLetterMessage(c.cfg.DeadLetter.Topic, m, DeadLetter{
			OriginalTopic:     m.Topic,
			OriginalPartition: m.Partition,
			OriginalOffset:    m.Offset,
			OriginalTimestamp: m.Timestamp,
			ConsumerGroup:     c.cfg.Kafka.ConsumerGroup,
			Subscription:      c.cfg.Subscription,
			ErrorClass:        ClassOf(reasons[i]),
			ErrorMessage:      reasons[i].Error(),
			Attempts:          attempts,
		})
	}
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	backoff := c.cfg.Retry.InitialBackoff.Duration
	retrying := false
	defer func() {
		if retrying {
			c.retrying.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		// Every attempt sends fresh producer messages: sarama keeps state in a sent one.
		pms := make([]*sarama.ProducerMessage, len(pending))
		index := make(map[*sarama.ProducerMessage]int, len(pending))
		for k, i := range pending {
			pms[k] = build(i)
			index[pms[k]] = i
		}
		err := c.producer.SendMessages(pms)
		if err == nil {
			c.metrics.deadLetterWrites.Add(float64(len(pms)))
			return true
		}
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			retry := make([]int, 0, len(perrs))
			for _, pe := range perrs {
				if i, ok := index[pe.Msg]; ok {
					retry = append(retry, i)
				}
			}
			if len(retry) > 0 {
				c.metrics.deadLetterWrites.Add(float64(len(pms) - len(retry)))
				pending = retry
			}
		}
		terr := Transient(ClassDeadLetterUnavailable, fmt.Errorf("write to dead-letter topic %s: %w", c.cfg.DeadLetter.Topic, err))
		if !retrying {
			retrying = true
			c.retrying.Add(1)
		}
		first := msgs[pending[0]]
		c.publishMsg(EventErrorOccurred, first, Event{Err: terr, Class: ClassDeadLetterUnavailable, Attempt: attempt})
		c.publishMsg(EventRetrying, first, Event{Err: terr, Class: ClassDeadLetterUnavailable, Attempt: attempt, Backoff: backoff})
		c.log.Warn("Dead-letter write failed; retrying", "error", terr, "messages", len(pending), "backoff", backoff)
		if !sleepCtx(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, c.cfg.Retry.MaxBackoff.Duration)
	}
}

// pause stops fetching the partition for d (messages already fetched wait in the claim's
// channel) and resumes it. It returns false if ctx ended first.
func (c *Consumer) pause(ctx context.Context, topic string, partition int32, d time.Duration) bool {
	p := map[string][]int32{topic: {partition}}
	c.group.Pause(p)
	defer c.group.Resume(p)
	return sleepCtx(ctx, d)
}

// publishMsg publishes an event about message m, filling in the coordinates.
func (c *Consumer) publishMsg(t EventType, m *Message, e Event) {
	e.Type = t
	e.Subscription = c.cfg.Subscription
	e.Group = c.cfg.Kafka.ConsumerGroup
	e.Topic, e.Partition, e.Offset = m.Topic, m.Partition, m.Offset
	c.monitor.Publish(e)
}
