package offsetstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/offsetstore"
)

func open(t *testing.T, driver, dsn string) (*gorm.DB, *offsetstore.Store) {
	t.Helper()
	db := consumertest.OpenDatabase(t, driver, dsn)
	s := offsetstore.New("")
	if err := s.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db, s
}

// advance is one Advance in its own transaction, committed when it succeeds.
func advance(db *gorm.DB, s *offsetstore.Store, k offsetstore.Key, floor, first, last int64) error {
	return db.Transaction(func(tx *gorm.DB) error {
		return s.Advance(context.Background(), tx, k, floor, first, last, time.Now())
	})
}

func stored(t *testing.T, db *gorm.DB, s *offsetstore.Store, k offsetstore.Key) int64 {
	t.Helper()
	got, err := s.Load(context.Background(), db, k, []int32{k.Partition})
	if err != nil {
		t.Fatal(err)
	}
	return got[k.Partition]
}

func TestAdvanceIsACompareAndSet(t *testing.T) {
	k := offsetstore.Key{Group: "g", Topic: "t", Partition: 3}
	none := offsetstore.None
	// Each step runs on the state the steps before it left.
	steps := []struct {
		name               string
		floor, first, last int64
		moved              bool
		want               int64
	}{
		{"the first batch of a partition inserts its row", none, 0, 9, false, 9},
		{"the batch right after the stored offset applies", 9, 10, 19, false, 19},
		{"a redelivered batch changes nothing", 9, 10, 19, true, 19},
		{"a batch that overlaps must be trimmed to its new tail first", 9, 15, 25, true, 19},
		{"a batch past a gap is not applied (its member is stale)", 24, 25, 30, true, 19},
		{"a claim whose start is the group's position applies past the store", none, 40, 41, false, 41},
		{"a batch from before the stored offset with no floor changes nothing", none, 30, 35, true, 41},
		{"a floor below the stored offset covers a range another member settled", 30, 42, 50, false, 50},
	}
	for _, b := range consumertest.Databases {
		t.Run(b.Name, func(t *testing.T) {
			db, s := open(t, b.Driver, b.DSN(t))
			if got := stored(t, db, s, k); got != none {
				t.Fatalf("a partition without a row: %d, want None", got)
			}
			for _, st := range steps {
				err := advance(db, s, k, st.floor, st.first, st.last)
				if st.moved != errors.Is(err, offsetstore.ErrMoved) || (!st.moved && err != nil) {
					t.Fatalf("%s: Advance(floor %d, %d..%d) = %v, want moved %v", st.name, st.floor, st.first, st.last, err, st.moved)
				}
				if got := stored(t, db, s, k); got != st.want {
					t.Fatalf("%s: stored %d, want %d", st.name, got, st.want)
				}
			}
			other := offsetstore.Key{Group: "other", Topic: "t", Partition: 3}
			if got := stored(t, db, s, other); got != none {
				t.Fatalf("another group's partition: %d, want None", got)
			}
		})
	}
}

// A topic deleted and created again, or the same topic name on another cluster, has another
// ID and starts again at offset 0: the row of the earlier incarnation is no stored offset,
// and the new incarnation's first batch takes the row over.
func TestAnotherIncarnationOfTheTopicIsNoStoredOffset(t *testing.T) {
	was := offsetstore.Key{Group: "g", Topic: "t", TopicID: "id-before", Partition: 0}
	now := was
	now.TopicID = "id-after"
	none := offsetstore.None
	steps := []struct {
		name               string
		k                  offsetstore.Key
		floor, first, last int64
		moved              bool
		wantWas, wantNow   int64
	}{
		{"the earlier incarnation applies up to 99", was, none, 0, 99, false, 99, none},
		{"the new incarnation's claim with a floor finds nothing to advance", now, 4, 5, 9, true, 99, none},
		{"the new incarnation's first batch takes the row over", now, none, 0, 9, false, none, 9},
		{"and goes on from there", now, 9, 10, 19, false, none, 19},
		{"a late batch of the earlier incarnation changes nothing", was, 99, 100, 120, true, none, 19},
	}
	for _, b := range consumertest.Databases {
		t.Run(b.Name, func(t *testing.T) {
			db, s := open(t, b.Driver, b.DSN(t))
			for _, st := range steps {
				err := advance(db, s, st.k, st.floor, st.first, st.last)
				if st.moved != errors.Is(err, offsetstore.ErrMoved) || (!st.moved && err != nil) {
					t.Fatalf("%s: Advance(floor %d, %d..%d) = %v, want moved %v", st.name, st.floor, st.first, st.last, err, st.moved)
				}
				if got := stored(t, db, s, was); got != st.wantWas {
					t.Fatalf("%s: stored for %s %d, want %d", st.name, was.TopicID, got, st.wantWas)
				}
				if got := stored(t, db, s, now); got != st.wantNow {
					t.Fatalf("%s: stored for %s %d, want %d", st.name, now.TopicID, got, st.wantNow)
				}
			}
		})
	}
}

// Two members that both believe they own a partition race to apply the same batch: the
// row (or, before it exists, the primary key) serialises them and exactly one wins.
func TestTwoMembersRacingOnAPartitionCannotBothWin(t *testing.T) {
	for _, b := range consumertest.Databases {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.DSN(t)
			db, s := open(t, b.Driver, dsn)
			for round, floor := range []int64{offsetstore.None, 99} {
				k := offsetstore.Key{Group: "g", Topic: "race", Partition: 0}
				const members = 4
				var wg sync.WaitGroup
				errs := make([]error, members)
				start := make(chan struct{})
				for i := range members {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[i] = advance(db, s, k, floor, floor+1, floor+100)
					}()
				}
				close(start)
				wg.Wait()
				won := 0
				for i, err := range errs {
					switch {
					case err == nil:
						won++
					case !errors.Is(err, offsetstore.ErrMoved):
						t.Fatalf("round %d, member %d: %v, want nil or ErrMoved", round, i, err)
					}
				}
				if won != 1 {
					t.Fatalf("round %d: %d members won, want exactly 1 (%v)", round, won, errs)
				}
				if got := stored(t, db, s, k); got != floor+100 {
					t.Fatalf("round %d: stored %d, want %d", round, got, floor+100)
				}
			}
		})
	}
}

func TestARolledBackAdvanceLeavesTheOffset(t *testing.T) {
	for _, b := range consumertest.Databases {
		t.Run(b.Name, func(t *testing.T) {
			db, s := open(t, b.Driver, b.DSN(t))
			k := offsetstore.Key{Group: "g", Topic: "t", Partition: 0}
			boom := errors.New("the handler failed")
			err := db.Transaction(func(tx *gorm.DB) error {
				if err := s.Advance(context.Background(), tx, k, offsetstore.None, 0, 9, time.Now()); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			if got := stored(t, db, s, k); got != offsetstore.None {
				t.Fatalf("stored %d after a rollback, want None", got)
			}
		})
	}
}

func TestValidTable(t *testing.T) {
	for name, want := range map[string]bool{
		"kafkasub_offsets": true, "_x": true, "Offsets2": true,
		"": false, "1abc": false, "a-b": false, "a;drop table x": false, "public.offsets": false,
		"a23456789012345678901234567890123456789012345678901234567890123":  true,
		"a234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if got := offsetstore.ValidTable(name); got != want {
			t.Errorf("ValidTable(%q) = %v, want %v", name, got, want)
		}
	}
}
