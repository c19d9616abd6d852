package consumer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// retry brings msgs to an outcome through narrow, retrying transient failures with
// exponential backoff and jitter while the partition is paused (readiness is false
// meanwhile). After retry.maxAttempts failed attempts (if set) every message gets one last
// attempt on its own and what still fails is dead-lettered as RetriesExhausted, so a
// message is not dead-lettered for its neighbours. It returns false when the session
// ended or the claim must end.
func (cl *claim) retry(ctx context.Context, msgs []*Message) ([]error, bool) {
	return cl.retrying(ctx, msgs[0], cl.c.cfg.Retry.MaxAttempts,
		func() ([]error, error) { return cl.narrow(ctx, msgs) },
		func(attempts int, last error) ([]error, bool) { return cl.exhausted(ctx, msgs, attempts, last) })
}

// exhausted gives each message of a batch whose retries are spent its own outcome.
func (cl *claim) exhausted(ctx context.Context, msgs []*Message, attempts int, last error) ([]error, bool) {
	results := make([]error, len(msgs))
	for i := range msgs {
		one := msgs[i : i+1]
		err := last
		if len(msgs) > 1 {
			r, e := cl.narrow(ctx, one)
			if e == nil {
				results[i] = r[0]
				continue
			}
			if ctx.Err() != nil || errors.Is(e, errGap) {
				return nil, false
			}
			err = e
		}
		reason := Permanent(ClassRetriesExhausted, fmt.Errorf("retries exhausted after %d attempts: %w", attempts, err))
		// Writing the dead letter is retried until it works: it is the message's only record.
		r, ok := cl.retrying(ctx, one[0], 0, func() ([]error, error) {
			cl.attempt = attempts // the dead letter counts the message's attempts, not the writes
			return cl.deadLetterOnly(ctx, one, reason, true)
		}, nil)
		if !ok {
			return nil, false
		}
		results[i] = r[0]
	}
	return results, true
}

// retrying runs op until it succeeds. After max failed attempts (0: no limit) it returns
// what exhausted returns.
func (cl *claim) retrying(ctx context.Context, first *Message, max int, op func() ([]error, error),
	exhausted func(attempts int, last error) ([]error, bool)) ([]error, bool) {
	c := cl.c
	backoff := c.backoff()
	waiting := false
	defer func() {
		if waiting {
			c.retrying.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		cl.attempt = attempt
		results, err := op()
		if err == nil {
			return results, true
		}
		if ctx.Err() != nil || errors.Is(err, errGap) {
			return nil, false
		}
		class := ClassOf(err)
		if class == ClassDatabaseUnavailable {
			c.setDBUp(false)
		}
		c.publishMsg(EventErrorOccurred, first, Event{Err: err, Class: class, Attempt: attempt})
		if max > 0 && attempt >= max && exhausted != nil {
			return exhausted(attempt, err)
		}
		if !waiting {
			waiting = true
			c.retrying.Add(1)
		}
		d := min(backoff.Step(), c.cfg.Retry.MaxBackoff.Duration)
		c.publishMsg(EventRetrying, first, Event{Err: err, Class: class, Attempt: attempt, Backoff: d})
		c.log.Warn("Transient failure; pausing the partition and retrying", "partition", first.Partition,
			"offset", first.Offset, "class", class, "error", err, "attempt", attempt, "backoff", d)
		if !c.pause(ctx, first.Topic, first.Partition, d) {
			return nil, false
		}
	}
}

// backoff is the retry schedule: retry.initialBackoff doubling up to retry.maxBackoff,
// with up to 10% jitter so that consumers retrying one database do not do so in step.
func (c *Consumer) backoff() *wait.Backoff {
	return &wait.Backoff{
		Duration: c.cfg.Retry.InitialBackoff.Duration,
		Factor:   2,
		Jitter:   0.1,
		Steps:    math.MaxInt32,
		Cap:      c.cfg.Retry.MaxBackoff.Duration,
	}
}

// pause stops fetching the partition for d (messages already fetched wait in the claim's
// channel) and resumes it. It returns false if ctx ended first.
func (c *Consumer) pause(ctx context.Context, topic string, partition int32, d time.Duration) bool {
	if c.group != nil { // nil where a test drives the layers without a group
		p := map[string][]int32{topic: {partition}}
		c.group.Pause(p)
		defer c.group.Resume(p)
	}
	return sleepCtx(ctx, d)
}
