package consumer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// flakyHandler applies each message as a row; a batch that holds a message with failures
// left fails as a whole with a transient error, and that message has one failure fewer.
type flakyHandler struct {
	failures map[int64]int // offset -> transient failures left (-1: forever)
	calls    int
}

func (h *flakyHandler) HandleBatch(ctx context.Context, tx *gorm.DB, msgs []*Message) ([]error, error) {
	h.calls++
	for _, m := range msgs {
		switch left := h.failures[m.Offset]; {
		case left < 0:
			return nil, Transient(ClassDatabaseUnavailable, fmt.Errorf("offset %d: the database is gone", m.Offset))
		case left > 0:
			h.failures[m.Offset] = left - 1
			return nil, Transient(ClassDatabaseUnavailable, fmt.Errorf("offset %d: try again", m.Offset))
		}
	}
	rows := make([]narrowRow, len(msgs))
	for i, m := range msgs {
		rows[i].At = m.Offset
	}
	if err := tx.Create(&rows).Error; err != nil {
		return nil, err
	}
	return make([]error, len(msgs)), nil
}

// TestRetryGivesEveryMessageItsOwnOutcome: transient failures are retried with backoff;
// after retry.maxAttempts each message gets one last attempt alone, so only the message
// that keeps failing is dead-lettered as RetriesExhausted and its neighbours are applied;
// with no limit, the batch waits until the claim ends and nothing of it is settled.
func TestRetryGivesEveryMessageItsOwnOutcome(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		name        string
		maxAttempts int
		failures    map[int64]int
		exhausted   []int64 // dead-lettered as RetriesExhausted
		waits       bool    // no outcome before the claim ends
		minRetries  int
	}{
		{"no failure: one attempt", 0, nil, nil, false, 0},
		{"two transient failures, then applied", 0, map[int64]int{3: 2}, nil, false, 2},
		{"within the limit: applied", 3, map[int64]int{5: 2}, nil, false, 2},
		{"one message fails forever: only it is exhausted", 3, map[int64]int{4: -1}, []int64{4}, false, 2},
		{"two fail forever: only they are exhausted", 2, map[int64]int{0: -1, 7: -1}, []int64{0, 7}, false, 1},
		{"no limit and failing forever: the batch waits", 0, map[int64]int{2: -1}, nil, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			failures := map[int64]int{}
			for k, v := range tc.failures {
				failures[k] = v
			}
			h := &flakyHandler{failures: failures}
			cl, db := narrowClaim(t, h)
			cl.c.cfg.Retry = RetryConfig{MaxAttempts: tc.maxAttempts,
				InitialBackoff: Duration{time.Millisecond}, MaxBackoff: Duration{5 * time.Millisecond}}
			retries := 0
			cl.c.monitor.Subscribe(func(Event) { retries++ }, EventRetrying)
			msgs := make([]*Message, n)
			for i := range msgs {
				msgs[i] = &Message{Topic: "t", Offset: int64(i), Value: []byte("v")}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			results, ok := cl.retry(ctx, msgs)
			if tc.waits {
				if ok || ctx.Err() == nil {
					t.Fatalf("retry returned %v before the claim ended, want it to wait", ok)
				}
				if got := storedOf(t, cl); got != -1 {
					t.Fatalf("stored offset %d, want none", got)
				}
				if retries < tc.minRetries {
					t.Fatalf("%d retries, want at least %d", retries, tc.minRetries)
				}
				return
			}
			if !ok {
				t.Fatal("retry ended without an outcome")
			}
			applied := appliedOffsets(t, db)
			for i, r := range results {
				off := int64(i)
				exhausted := false
				for _, e := range tc.exhausted {
					exhausted = exhausted || e == off
				}
				if exhausted != (r != nil) || exhausted == applied[off] {
					t.Errorf("offset %d (exhausted %v): result %v, applied %v", off, exhausted, r, applied[off])
				}
				if exhausted && ClassOf(r) != ClassRetriesExhausted {
					t.Errorf("offset %d: class %s, want RetriesExhausted", off, ClassOf(r))
				}
				if exhausted && !strings.Contains(r.Error(), "retries exhausted after") {
					t.Errorf("offset %d: %q does not say the retries were exhausted", off, r)
				}
			}
			if len(applied) != n-len(tc.exhausted) {
				t.Errorf("%d rows, want %d (each applied once)", len(applied), n-len(tc.exhausted))
			}
			if retries < tc.minRetries {
				t.Errorf("%d retries, want at least %d", retries, tc.minRetries)
			}
			if got := storedOf(t, cl); got != n-1 {
				t.Errorf("stored offset %d, want %d", got, n-1)
			}
		})
	}
}

func storedOf(t *testing.T, cl *claim) int64 {
	t.Helper()
	got, err := cl.c.store.Load(context.Background(), cl.c.db, cl.key, []int32{cl.key.Partition})
	if err != nil {
		t.Fatal(err)
	}
	return got[cl.key.Partition]
}
