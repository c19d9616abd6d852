package consumer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"path/filepath"
	"slices"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer/offsetstore"
)

// poisonHandler applies each message as a row, as one statement would: a batch that holds
// a poisoned message fails as a whole (a permanent batch error, or a panic).
type poisonHandler struct {
	poison map[int64]bool
	panics bool
	calls  int
}

type narrowRow struct {
	At int64 `gorm:"primaryKey;autoIncrement:false"`
}

// appliedOffsets returns the offsets whose rows the handler wrote and the runtime committed.
func appliedOffsets(t *testing.T, db *gorm.DB) map[int64]bool {
	t.Helper()
	var rows []narrowRow
	if err := db.Order("at").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	applied := map[int64]bool{}
	for _, r := range rows {
		applied[r.At] = true
	}
	return applied
}

func (h *poisonHandler) HandleBatch(ctx context.Context, tx *gorm.DB, msgs []*Message) ([]error, error) {
	h.calls++
	rows := make([]narrowRow, len(msgs))
	for i, m := range msgs {
		rows[i].At = m.Offset
		if h.poison[m.Offset] {
			if h.panics {
				panic(fmt.Sprintf("offset %d", m.Offset))
			}
			return nil, Permanentf(ClassDatabaseError, "the statement fails for offset %d", m.Offset)
		}
	}
	if err := tx.Create(&rows).Error; err != nil {
		return nil, err
	}
	return make([]error, len(msgs)), nil
}

// narrowClaim is a claim of a consumer on a fresh SQLite database and an in-process broker,
// as narrow sees it (no group session: narrow marks nothing).
func narrowClaim(t *testing.T, h Handler) (*claim, *gorm.DB) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	db, err := OpenDatabase(DriverSQLite, filepath.Join(t.TempDir(), "narrow.sqlite3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB, _ := db.DB(); _ = sqlDB.Close() })
	if err := db.AutoMigrate(&narrowRow{}); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Subscription: "test/narrow", Handler: "test",
		Kafka:       KafkaConfig{BootstrapServers: cluster.ListenAddrs(), Topic: "t", ConsumerGroup: "g"},
		DeadLetter:  DeadLetterConfig{Topic: "t.dlq"},
		Database:    DatabaseConfig{Driver: DriverSQLite},
		HealthAddr:  "127.0.0.1:0",
		MetricsAddr: "127.0.0.1:0",
	}
	c, err := New(cfg, WithHandler(h), WithDatabase(db), WithoutHTTP(), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	c.db, c.handler = db, h
	if err := c.store.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducer(cfg.Kafka.BootstrapServers, c.saramaCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c.deadLetters = newDeadLetterWriter(p, cfg.DeadLetter.Topic, 1<<20)
	return &claim{c: c, key: offsetstore.Key{Group: "g", Topic: "t"}, stored: unknownOffset,
		floor: offsetstore.None, deadLettered: map[int64]bool{}, tailFrom: unknownOffset}, db
}

// TestNarrowFindsTheMessagesABatchErrorBelongsTo: whatever the poisoned messages are, only
// they are dead-lettered, every other message is applied once, the stored offset ends at
// the batch's last offset, and the handler is called at most about 2·k·log2(n) times more.
func TestNarrowFindsTheMessagesABatchErrorBelongsTo(t *testing.T) {
	const n = 64
	for _, tc := range []struct {
		name   string
		poison []int64
		panics bool
	}{
		{"no poison", nil, false},
		{"the first message", []int64{0}, false},
		{"one in the middle", []int64{37}, false},
		{"the last message", []int64{n - 1}, false},
		{"two neighbours", []int64{20, 21}, false},
		{"three apart", []int64{3, 31, 60}, false},
		{"every message", seq(0, n), false},
		{"one that panics", []int64{42}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &poisonHandler{poison: map[int64]bool{}, panics: tc.panics}
			for _, off := range tc.poison {
				h.poison[off] = true
			}
			cl, db := narrowClaim(t, h)
			msgs := make([]*Message, n)
			for i := range msgs {
				msgs[i] = &Message{Topic: "t", Offset: int64(i), Value: []byte("v")}
			}
			results, err := cl.narrow(context.Background(), msgs)
			if err != nil {
				t.Fatal(err)
			}
			applied := appliedOffsets(t, db)
			for i, r := range results {
				off := int64(i)
				poisoned := h.poison[off]
				if poisoned != (r != nil) || poisoned == applied[off] {
					t.Errorf("offset %d (poisoned %v): result %v, applied %v", off, poisoned, r, applied[off])
				}
				if want := map[bool]ErrorClass{false: ClassDatabaseError, true: ClassHandlerPanic}[tc.panics]; poisoned && ClassOf(r) != want {
					t.Errorf("offset %d: class %s, want %s", off, ClassOf(r), want)
				}
			}
			got, err := cl.c.store.Load(context.Background(), db, cl.key, []int32{0})
			if err != nil || got[0] != n-1 {
				t.Errorf("stored offset %d (%v), want %d", got[0], err, n-1)
			}
			if k := len(tc.poison); k > 0 && k < n {
				if limit := 1 + 2*k*bits.Len(n); h.calls > limit {
					t.Errorf("%d handler calls for %d poisoned of %d, want at most %d", h.calls, k, n, limit)
				}
			}
		})
	}
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return slices.Clip(out)
}
