package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer/offsetstore"
)

var (
	// errAlreadyApplied is the result of a message at or below the stored offset: an
	// earlier life of this consumer or another member applied it; nothing is done again.
	errAlreadyApplied = errors.New("already applied")
	// errGap: the stored offset is below what this claim has settled, which a live owner of
	// the partition never sees; the claim ends, and the next session starts over.
	errGap = Permanentf(ClassUnclassified, "the stored offset is behind this claim's position")
	// errStore wraps a failure to read or advance the stored offset (not a message's fault).
	errStore = errors.New("offset store")
)

// transact brings msgs to an outcome in one database transaction:
//
//  1. messages at or below the partition's stored offset are skipped (errAlreadyApplied);
//  2. a transaction advances the stored offset to the batch's last offset, provided nobody
//     moved it (offsetstore.Advance; otherwise it is rolled back, the stored offset read
//     again and the batch trimmed);
//  3. the handler applies the rest in the same transaction; when it gives a message a
//     permanent result, the transaction is rolled back, that message's dead letter is
//     written and acknowledged (outside any transaction), and the transaction is done
//     again without it, so a dead-lettered message never changes the database;
//  4. the transaction commits; every dead letter of the batch is acknowledged by then.
//
// rejected, when given, holds a permanent error per message: those are dead-lettered and
// the handler is not called for them. A crash after the dead letters are acknowledged and
// before the commit leaves them in the topic; the next claim finds them in its tail
// (deadletter_tail.go) and does not write them again. Nothing else is done twice.
func (cl *claim) transact(ctx context.Context, msgs []*Message, rejected []error) ([]error, error) {
	c := cl.c
	ctx, cancel := context.WithTimeout(ctx, c.opts.handlerTimeout)
	defer cancel()
	if c.db == nil { // no database: at least once, nothing to fence with
		results, err := cl.apply(ctx, nil, msgs, rejected)
		if err == nil {
			err = cl.writeDeadLetters(ctx, msgs, results) // those the handler rejected just now
		}
		if err != nil {
			return nil, err
		}
		clear(cl.deadLettered)
		return results, nil
	}
	for range 3 {
		if err := cl.load(ctx); err != nil {
			return nil, err
		}
		skip := 0
		for skip < len(msgs) && msgs[skip].Offset <= cl.stored {
			skip++
		}
		results := make([]error, len(msgs))
		for i := range skip {
			results[i] = errAlreadyApplied
		}
		if skip == len(msgs) {
			return results, nil
		}
		if cl.floor > cl.stored {
			if cl.started {
				c.log.Error("The stored offset is behind this claim's position; ending the claim",
					"partition", cl.key.Partition, "stored", cl.stored, "position", cl.floor+1)
				return nil, errGap
			}
			// The group's committed offset is ahead of the store (offsets reset by hand, a
			// database restored from a backup): the group's position wins.
			c.log.Warn("The group's committed offset is ahead of the stored offset; starting at the group's position",
				"partition", cl.key.Partition, "stored", cl.stored, "position", cl.floor+1)
			cl.floor = offsetstore.None
		}
		todo := msgs[skip:]
		var todoRejected []error
		if rejected != nil {
			todoRejected = rejected[skip:]
		}
		out, err := cl.inTransaction(ctx, todo, todoRejected)
		if errors.Is(err, offsetstore.ErrMoved) {
			cl.stored = unknownOffset // another member moved it: read it again
			continue
		}
		if err != nil {
			return nil, err
		}
		copy(results[skip:], out)
		return results, nil
	}
	return nil, Transient(ClassDatabaseUnavailable, fmt.Errorf("%w: the stored offset of %s kept moving", errStore, cl.key))
}

// load reads the stored offset if the claim does not know it.
func (cl *claim) load(ctx context.Context) error {
	if cl.stored != unknownOffset {
		return nil
	}
	c := cl.c
	got, err := c.store.Load(ctx, c.db, cl.key, []int32{cl.key.Partition})
	if err != nil {
		return fmt.Errorf("%w: read the stored offset of %s: %w", errStore, cl.key, ClassifyDatabaseError(err))
	}
	cl.stored = got[cl.key.Partition]
	cl.noteStart()
	return nil
}

// inTransaction is one transaction over msgs (all above the stored offset).
func (cl *claim) inTransaction(ctx context.Context, msgs []*Message, rejected []error) ([]error, error) {
	c := cl.c
	first, last := msgs[0].Offset, msgs[len(msgs)-1].Offset
	if rejected == nil {
		rejected = make([]error, len(msgs))
	}
	// Dead letters are written and acknowledged before the transaction that records them
	// commits, but never while it is open: a transaction waiting for the broker would hold
	// the database's locks (SQLite's only connection) for a network round trip.
	if err := cl.fenceDeadLetters(ctx, msgs, rejected); err != nil {
		return nil, err
	}
	if err := cl.writeDeadLetters(ctx, msgs, rejected); err != nil {
		return nil, err
	}
	for {
		tx, err := beginLazy(ctx, c.db)
		if err != nil {
			return nil, ClassifyDatabaseError(err)
		}
		results, err := func() ([]error, error) {
			// First, so that a stale member stops before the handler's work, and the rows
			// the handler changes stay locked only from its statements to the commit (the
			// offset row is this partition's alone, so holding it longer costs no one).
			if err := c.store.Advance(ctx, tx, cl.key, cl.floor, first, last, time.Now().UTC()); err != nil {
				if errors.Is(err, offsetstore.ErrMoved) {
					return nil, err
				}
				return nil, fmt.Errorf("%w: advance the stored offset of %s: %w", errStore, cl.key, ClassifyDatabaseError(err))
			}
			return cl.apply(ctx, tx, msgs, rejected)
		}()
		if err != nil || hasNew(results, rejected) {
			if rerr := tx.Rollback().Error; rerr != nil && err == nil {
				err = ClassifyDatabaseError(rerr)
			}
			if err != nil {
				return nil, err
			}
			rejected = results // again, without the messages the handler rejected
			if err := cl.fenceDeadLetters(ctx, msgs, rejected); err != nil {
				return nil, err
			}
			if err := cl.writeDeadLetters(ctx, msgs, rejected); err != nil {
				return nil, err
			}
			continue
		}
		if err := ClassifyDatabaseError(tx.Commit().Error); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		cl.stored, cl.floor = last, last
		for off := range cl.deadLettered {
			if off <= last {
				delete(cl.deadLettered, off)
			}
		}
		return results, nil
	}
}

// fenceDeadLetters makes sure, before dead letters for msgs are written, that the stored
// offset is still where this claim left it. The transaction's compare-and-set fences the
// database, but letters are written before it: a member frozen while its partitions moved
// would otherwise write again the letters its successor already wrote. Now it finds the
// offset moved (offsetstore.ErrMoved) and trims the batch; what remains is the moment
// between this read and the write.
func (cl *claim) fenceDeadLetters(ctx context.Context, msgs []*Message, rejected []error) error {
	todo := false
	for i, m := range msgs {
		todo = todo || cl.letterDue(m, rejected[i])
	}
	if !todo {
		return nil
	}
	c := cl.c
	got, err := c.store.Load(ctx, c.db, cl.key, []int32{cl.key.Partition})
	if err != nil {
		return fmt.Errorf("%w: read the stored offset of %s: %w", errStore, cl.key, ClassifyDatabaseError(err))
	}
	if got[cl.key.Partition] != cl.stored {
		return offsetstore.ErrMoved
	}
	return nil
}

// hasNew reports whether results rejects a message that rejected did not.
func hasNew(results, rejected []error) bool {
	for i, r := range results {
		if r != nil && rejected[i] == nil {
			return true
		}
	}
	return false
}

// apply calls the handler on the messages rejected does not reject. The results are
// rejected's errors plus the handler's new permanent ones; a new one means the caller must
// roll back and apply again without it.
func (cl *claim) apply(ctx context.Context, tx *gorm.DB, msgs []*Message, rejected []error) ([]error, error) {
	results := make([]error, len(msgs))
	var good []*Message
	var at []int
	for i, m := range msgs {
		if rejected != nil && rejected[i] != nil {
			results[i] = rejected[i]
			continue
		}
		good = append(good, m)
		at = append(at, i)
	}
	if len(good) > 0 {
		out, err := cl.call(ctx, tx, good)
		if err != nil {
			return nil, cl.c.retryByPolicy(err)
		}
		for _, r := range out {
			if r != nil && cl.c.actionFor(r) == ActionRetry {
				return nil, cl.c.retryByPolicy(r)
			}
		}
		fresh := false
		for k, r := range out {
			if r != nil {
				results[at[k]] = r
				fresh = true
			}
		}
		if fresh {
			return results, nil
		}
	}
	return results, nil
}

// call is one HandleBatch call with its results normalised: a permanent batch error or a
// panic comes back as a permanent error (narrow then finds its message), a result that is
// not permanent as a transient batch error.
func (cl *claim) call(ctx context.Context, tx *gorm.DB, msgs []*Message) (results []error, err error) {
	c := cl.c
	p := cl.key.Partition
	c.busyMu.Lock()
	c.busySince[p] = time.Now()
	c.busyMu.Unlock()
	defer func() {
		c.busyMu.Lock()
		delete(c.busySince, p)
		c.busyMu.Unlock()
		if r := recover(); r != nil {
			c.log.Error("Handler panicked", "panic", r, "partition", p, "offset", msgs[0].Offset,
				"messages", len(msgs), "stack", string(debug.Stack()))
			results, err = nil, Permanentf(ClassHandlerPanic, "handler panicked: %v", r)
		}
	}()
	results, err = c.handler.HandleBatch(ctx, tx, msgs)
	if err != nil {
		return nil, err
	}
	if len(results) != len(msgs) {
		return nil, Transient(ClassUnclassified, fmt.Errorf("handler returned %d results for %d messages", len(results), len(msgs)))
	}
	for _, r := range results {
		if r != nil && !IsPermanent(r) {
			return nil, r
		}
	}
	return results, nil
}

// deadLetterOnly dead-letters msgs with reason, recording them in the offset store. With
// withoutStore, a database that is unreachable does not hold them up: they are written to
// the dead-letter topic and the partition moves on in Kafka only (retries exhausted while
// the database is down).
func (cl *claim) deadLetterOnly(ctx context.Context, msgs []*Message, reason error, withoutStore bool) ([]error, error) {
	rejected := make([]error, len(msgs))
	for i := range rejected {
		rejected[i] = reason
	}
	results, err := cl.transact(ctx, msgs, rejected)
	if err == nil || !withoutStore || ClassOf(err) != ClassDatabaseUnavailable || ctx.Err() != nil {
		return results, err
	}
	if err := cl.writeDeadLetters(ctx, msgs, rejected); err != nil {
		return nil, err
	}
	return rejected, nil
}

// writeDeadLetters writes a dead letter for every message with a result and waits for the
// acknowledgements; a letter acknowledged before (an earlier attempt of the batch) is not
// written again.
func (cl *claim) writeDeadLetters(ctx context.Context, msgs []*Message, results []error) error {
	c := cl.c
	if c.db != nil && !cl.tailChecked && cl.tailFrom != unknownOffset {
		limit := cl.tailFrom + int64(c.cfg.Batch.MaxMessages)
		for i, m := range msgs {
			if results[i] == nil {
				continue
			}
			if m.Offset <= limit { // an earlier life may have written it before it crashed
				cl.checkDeadLetterTail(ctx, cl.tailFrom, limit)
			}
			cl.tailChecked = true
			break
		}
	}
	var todo []*Message
	var letters []DeadLetter
	for i, m := range msgs {
		if !cl.letterDue(m, results[i]) {
			continue
		}
		todo = append(todo, m)
		letters = append(letters, DeadLetter{
			OriginalTopic:     m.Topic,
			OriginalPartition: m.Partition,
			OriginalOffset:    m.Offset,
			OriginalTimestamp: m.Timestamp,
			ConsumerGroup:     c.cfg.Kafka.ConsumerGroup,
			Subscription:      c.cfg.Subscription,
			ErrorClass:        ClassOf(results[i]),
			ErrorMessage:      results[i].Error(),
			Attempts:          cl.attempt,
		})
	}
	if len(todo) == 0 {
		return nil
	}
	acked, err := c.deadLetters.Write(ctx, todo, letters)
	n := 0
	for i, ok := range acked {
		if ok {
			cl.deadLettered[todo[i].Offset] = true
			n++
		}
	}
	c.metrics.deadLetterWrites.Add(float64(n))
	return err
}

// letterDue reports whether message m, with result r, needs a dead letter written: r is a
// permanent error whose class the error policy does not skip, and no letter of m has been
// acknowledged yet.
func (cl *claim) letterDue(m *Message, r error) bool {
	return r != nil && !cl.deadLettered[m.Offset] && cl.c.actionFor(r) != ActionSkip
}

// actionFor is the error policy's action for a permanent error: ActionDeadLetter unless
// the policy names its class.
func (c *Consumer) actionFor(err error) ErrorAction {
	if a, ok := c.cfg.ErrorPolicy[ClassOf(err)]; ok {
		return a
	}
	return ActionDeadLetter
}

// retryByPolicy turns a permanent error whose class the error policy retries into a
// transient one of the same class (a new error: a wrapped PermanentError would still be
// permanent), so the retry layer backs off and, after retry.maxAttempts, gives each message
// its own last attempt.
func (c *Consumer) retryByPolicy(err error) error {
	if !IsPermanent(err) || c.actionFor(err) != ActionRetry {
		return err
	}
	return Transient(ClassOf(err), fmt.Errorf("%s (retried: the error policy retries %s)", err.Error(), ClassOf(err)))
}
