package consumer

import (
	"context"
	"errors"
)

// narrow brings msgs to an outcome in one transaction. When that fails permanently for the
// batch as a whole (the database refused the batch's statement, the handler returned a
// permanent batch error or panicked) the failure belongs to some message, not to all: the
// batch is split in halves, each brought to its own outcome in order, down to the single
// message that is dead-lettered with the error. A transient error is returned as it is.
func (cl *claim) narrow(ctx context.Context, msgs []*Message) ([]error, error) {
	results, err := cl.transact(ctx, msgs, nil)
	if err == nil || !IsPermanent(err) || errors.Is(err, errGap) || errors.Is(err, errStore) {
		return results, err
	}
	if len(msgs) == 1 {
		return cl.deadLetterOnly(ctx, msgs, err, false)
	}
	mid := len(msgs) / 2
	left, err := cl.narrow(ctx, msgs[:mid])
	if err != nil {
		return nil, err
	}
	right, err := cl.narrow(ctx, msgs[mid:])
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}
