package consumer

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"gorm.io/gorm"
)

// rejectHandler applies each message as a row and rejects the offsets it is given, each
// with a permanent result of its own.
type rejectHandler struct{ reject map[int64]bool }

func (h *rejectHandler) HandleBatch(ctx context.Context, tx *gorm.DB, msgs []*Message) ([]error, error) {
	results := make([]error, len(msgs))
	var rows []narrowRow
	for i, m := range msgs {
		if h.reject[m.Offset] {
			results[i] = Permanentf(ClassValidationFailed, "offset %d is invalid", m.Offset)
			continue
		}
		rows = append(rows, narrowRow{At: m.Offset})
	}
	if len(rows) > 0 {
		if err := tx.Create(&rows).Error; err != nil {
			return nil, err
		}
	}
	return results, nil
}

// TestAStaleClaimWritesNoDeadLetterItsSuccessorOwns: a claim applied offsets 0..9; while it
// was frozen another member applied 10..19 (dead-lettering 15). When the stale claim goes
// on with 10..19 it must find the stored offset moved before it writes a dead letter: it
// writes none and applies nothing.
func TestAStaleClaimWritesNoDeadLetterItsSuccessorOwns(t *testing.T) {
	h := &rejectHandler{reject: map[int64]bool{15: true}}
	cl, db := narrowClaim(t, h)
	batch := func(from, to int64) []*Message {
		var msgs []*Message
		for off := from; off <= to; off++ {
			msgs = append(msgs, &Message{Topic: "t", Offset: off, Value: []byte("v")})
		}
		return msgs
	}
	ctx := context.Background()
	if _, err := cl.transact(ctx, batch(0, 9), nil); err != nil {
		t.Fatal(err)
	}
	// The successor: rows and the stored offset of 10..19, committed together.
	err := db.Transaction(func(tx *gorm.DB) error {
		for off := int64(10); off <= 19; off++ {
			if off != 15 {
				if err := tx.Create(&narrowRow{At: off + 1000}).Error; err != nil {
					return err
				}
			}
		}
		return cl.c.store.Advance(ctx, tx, cl.key, 9, 10, 19, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}

	results, err := cl.transact(ctx, batch(10, 19), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r != errAlreadyApplied {
			t.Errorf("offset %d: %v, want already applied", 10+i, r)
		}
	}
	client, err := sarama.NewClient(cl.c.cfg.Kafka.BootstrapServers, cl.c.saramaCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if n, err := client.GetOffset(cl.c.cfg.DeadLetter.Topic, 0, sarama.OffsetNewest); err != nil || n != 0 {
		t.Fatalf("the stale claim wrote %d dead letters (%v), want none", n, err)
	}
	var stale int64
	if err := db.Model(&narrowRow{}).Where("at BETWEEN 10 AND 19").Count(&stale).Error; err != nil || stale != 0 {
		t.Fatalf("the stale claim applied %d rows (%v), want none", stale, err)
	}
}
