package consumer

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStatusJSON(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := Status{Subscription: "shop/inventory", Group: "shop-inventory", Topic: "updates"}
	hwm := func(v int64) func() int64 { return func() int64 { return v } }
	long := strings.Repeat("x", 3000)
	tests := []struct {
		name  string
		setup func(b *statusBoard, s *Status)
		want  string
	}{
		{"A consumer that has not joined reports no partitions, zero counts and no error.",
			func(b *statusBoard, s *Status) {},
			`{"version":1,"subscription":"shop/inventory","group":"shop-inventory","topic":"updates","joined":false,"databaseUp":false,"retrying":0,` +
				`"startedAt":"2026-01-02T03:04:05Z","partitions":[],"lag":0,"messages":{"applied":0,"deadLettered":0,"skipped":0,"retried":0},` +
				`"deadLetter":{"topic":"updates.dlq","partitions":0,"affinity":false}}`},
		{"Two partitions, one caught up and one behind, sum their lags; partitions are in order.",
			func(b *statusBoard, s *Status) {
				s.Joined, s.DatabaseUp = true, true
				p1, _ := b.claimStarted(1, hwm(10))
				p1.settled(4, 3)
				p0, _ := b.claimStarted(0, hwm(7))
				p0.settled(7, 6)
			},
			`"partitions":[{"partition":0,"committed":7,"stored":6,"highWaterMark":7,"lag":0},{"partition":1,"committed":4,"stored":3,"highWaterMark":10,"lag":6}],"lag":6,`},
		{"A partition whose start is not known yet has a null lag and adds nothing to the total.",
			func(b *statusBoard, s *Status) { b.claimStarted(0, hwm(5)) },
			`"partitions":[{"partition":0,"committed":null,"stored":null,"highWaterMark":5,"lag":null}],"lag":0,`},
		{"A partition that ended its claim is gone; a newer claim of the partition is kept.",
			func(b *statusBoard, s *Status) {
				_, done := b.claimStarted(0, hwm(5))
				_, done2 := b.claimStarted(1, hwm(5))
				b.claimStarted(1, hwm(9))
				done()
				done2()
			},
			`"partitions":[{"partition":1,"committed":null,"stored":null,"highWaterMark":9,"lag":null}],"lag":0,`},
		{"Outcomes are counted and the last dead letter's time is reported.",
			func(b *statusBoard, s *Status) {
				b.observe(Event{Type: EventProcessed, Time: t0})
				b.observe(Event{Type: EventProcessed, Time: t0})
				b.observe(Event{Type: EventRetrying, Time: t0})
				b.observe(Event{Type: EventDeadLettered, Time: t0.Add(time.Second)})
				b.skipped.Add(3)
			},
			`"messages":{"applied":2,"deadLettered":1,"skipped":3,"retried":1},"lastDeadLetterAt":"2026-01-02T03:04:06Z",`},
		{"The last error has its class, coordinates and time; a long message is cut to 1 KiB.",
			func(b *statusBoard, s *Status) {
				b.observe(Event{Type: EventErrorOccurred, Time: t0, Class: ClassDatabaseUnavailable, Err: errors.New("first"), Topic: "updates", Partition: 2, Offset: 41})
				b.observe(Event{Type: EventErrorOccurred, Time: t0, Class: ClassValidationFailed, Permanent: true,
					Err: errors.New(long), Topic: "updates", Partition: 2, Offset: 42})
			},
			`"lastError":{"class":"ValidationFailed","permanent":true,"message":"` + string(capHeaderValue(long)) + `","time":"2026-01-02T03:04:05Z","topic":"updates","partition":2,"offset":42},`},
		{"The dead-letter topic says its partitions, whether letters keep their partition and whether the consumer created it.",
			func(b *statusBoard, s *Status) {
				b.setDeadLetter(DeadLetterStatus{Topic: "updates.dlq", Partitions: 3, Affinity: true, Created: true})
			},
			`"deadLetter":{"topic":"updates.dlq","partitions":3,"affinity":true,"created":true}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newStatusBoard("updates.dlq")
			b.started = t0
			s := base
			tt.setup(b, &s)
			got, err := json.Marshal(b.snapshot(s))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(got), tt.want) {
				t.Fatalf("status JSON\n%s\nlacks\n%s", got, tt.want)
			}
			if len(got) > 4096 {
				t.Fatalf("status JSON is %d bytes, want at most 4 KiB", len(got))
			}
		})
	}
}
