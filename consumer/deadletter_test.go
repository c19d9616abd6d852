package consumer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
)

// For deadletter_writer_test.go and database_test.go, which are in package consumer_test
// to use consumertest.
var (
	NewDeadLetterWriter = newDeadLetterWriter
	DeadLetterLimit     = deadLetterLimit
	PingDatabaseState   = pingDatabaseState
)

// RecordBatchOverhead is recordBatchOverhead, for deadletter_writer_test.go.
const RecordBatchOverhead = recordBatchOverhead

func TestCapHeaderValue(t *testing.T) {
	cases := []struct {
		name, in string
		cut      bool
	}{
		{"A short value is kept as it is.", "Inventory count must be greater than or equal to 0", false},
		{"A value of exactly the cap is kept as it is.", strings.Repeat("x", MaxHeaderValueBytes), false},
		{"A value one byte over the cap is cut.", strings.Repeat("x", MaxHeaderValueBytes+1), true},
		{"An error message repeating a 600 kB payload is cut to the cap.", "invalid character 'x' in " + strings.Repeat("x", 600_000), true},
		{"Two-byte runes are cut on a rune boundary.", strings.Repeat("é", 1000), true},
		{"Four-byte runes are cut on a rune boundary.", strings.Repeat("🦫", 500), true},
		{"Runes of mixed widths are cut on a rune boundary.", strings.Repeat("aé€🦫", 200), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(capHeaderValue(c.in))
			if !c.cut {
				if got != c.in {
					t.Fatalf("got %d bytes, want the %d bytes unchanged", len(got), len(c.in))
				}
				return
			}
			mark := "… (cut, " + strconv.Itoa(len(c.in)) + " bytes)"
			if len(got) > MaxHeaderValueBytes || len(got) < MaxHeaderValueBytes-utf8.UTFMax {
				t.Errorf("got %d bytes, want at most %d and no fewer than %d", len(got), MaxHeaderValueBytes, MaxHeaderValueBytes-utf8.UTFMax)
			}
			if !strings.HasSuffix(got, mark) {
				t.Errorf("got ...%q, want it to end in %q", got[max(0, len(got)-40):], mark)
			}
			if !utf8.ValidString(got) {
				t.Error("the cut value is not valid UTF-8")
			}
			if kept := strings.TrimSuffix(got, mark); !strings.HasPrefix(c.in, kept) {
				t.Error("the cut value does not start with the value")
			}
		})
	}
}

func TestDeadLetterHeadersAreCapped(t *testing.T) {
	long := strings.Repeat("y", 5000)
	d := DeadLetter{OriginalTopic: "orders", ConsumerGroup: long, Subscription: long, ErrorClass: ErrorClass(long), ErrorMessage: long,
		OriginalTimestamp: time.Unix(1, 0), Attempts: 3}
	for _, h := range d.Headers() {
		if len(h.Value) > MaxHeaderValueBytes {
			t.Errorf("header %s is %d bytes, want at most %d", h.Key, len(h.Value), MaxHeaderValueBytes)
		}
	}
	got, _ := ParseDeadLetter(d.Headers())
	if got.OriginalTopic != "orders" || got.Attempts != 3 || !strings.HasSuffix(got.ErrorMessage, "… (cut, 5000 bytes)") {
		t.Errorf("parsed %+v, want the topic, the attempts and the cut error message", got)
	}
}

func TestDeadLetterRecord(t *testing.T) {
	letter := DeadLetter{OriginalTopic: "orders", OriginalPartition: 1, OriginalOffset: 7, OriginalTimestamp: time.Unix(1700000000, 0),
		ConsumerGroup: "shop", Subscription: "ns/orders", ErrorClass: ClassInvalidPayload, ErrorMessage: strings.Repeat("e", 100_000), Attempts: 1}
	hdrs := func(n, size int) []Header {
		out := []Header{{HeaderErrorClass, []byte("stale")}} // a replayed record's old reason
		for i := range n {
			out = append(out, Header{"h" + strconv.Itoa(i), bytes.Repeat([]byte("h"), size)})
		}
		return out
	}
	const budget = 64 * 1024
	// size is the estimate of the uncut record whose value has n bytes.
	size := func(m Message, n int) int {
		return newRecord("dlq", m.Key, make([]byte, n), append(originalHeaders(m.Headers), letter.Headers()...)).ByteSize(2)
	}
	under := Message{Key: []byte("k"), Headers: hdrs(2, 10)}
	room := budget - size(under, 0)

	cases := []struct {
		name         string
		msg          Message
		valueKept    bool // the value is whole
		headersKept  bool // the original headers are there
		keyKept      bool
		wantValueLen int // when the value is cut: the prefix kept, -1 for "whatever fills the budget"
	}{
		{"A letter under the budget is kept whole.", Message{Key: []byte("k"), Value: []byte("v"), Headers: hdrs(2, 10)}, true, true, true, 0},
		{"A letter one byte under the budget is kept whole.", Message{Key: under.Key, Value: make([]byte, room-1), Headers: under.Headers}, true, true, true, 0},
		{"A letter of exactly the budget is kept whole.", Message{Key: under.Key, Value: make([]byte, room), Headers: under.Headers}, true, true, true, 0},
		{"A letter one byte over the budget has its value cut.", Message{Key: under.Key, Value: make([]byte, room+1), Headers: under.Headers}, false, true, true, -1},
		{"A 600 kB value is cut to what fits.", Message{Key: []byte("k"), Value: bytes.Repeat([]byte("v"), 600_000), Headers: hdrs(2, 10)}, false, true, true, -1},
		{"Original headers too large for the budget are dropped and the value is kept.", Message{Key: []byte("k"), Value: []byte("v"), Headers: hdrs(3, 30_000)}, true, false, true, 0},
		{"Original headers and value too large are both cut.", Message{Key: []byte("k"), Value: make([]byte, 100_000), Headers: hdrs(3, 30_000)}, false, false, true, -1},
		{"A key too large for the budget is cut to its first bytes.", Message{Key: make([]byte, 100_000), Value: []byte("v")}, true, true, false, 0},
		{"A tombstone stays a tombstone.", Message{Key: []byte("k"), Headers: hdrs(1, 10)}, true, true, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pm := deadLetterRecord("dlq", &c.msg, letter, budget)
			if got := pm.ByteSize(2); got > budget {
				t.Errorf("estimated size %d, want at most %d", got, budget)
			}
			rec := encoded(t, pm)
			d, original := ParseDeadLetter(rec.headers)
			if d.OriginalOffset != 7 || d.ErrorClass != ClassInvalidPayload || len(d.ErrorMessage) > MaxHeaderValueBytes {
				t.Errorf("runtime headers %+v, want offset 7, class InvalidPayload and a capped message", d)
			}
			vcut, sum := header(rec.headers, HeaderValueCut), header(rec.headers, HeaderOriginalValueSHA256)
			switch {
			case c.valueKept:
				if !bytes.Equal(rec.value, c.msg.Value) || (rec.value == nil) != (c.msg.Value == nil) || vcut != "" || sum != "" {
					t.Errorf("value of %d bytes (cut header %q), want the %d bytes whole and no cut headers", len(rec.value), vcut, len(c.msg.Value))
				}
			default:
				want := sha256.Sum256(c.msg.Value)
				if vcut != strconv.Itoa(len(c.msg.Value)) || sum != hex.EncodeToString(want[:]) {
					t.Errorf("cut headers %q and %q, want the original size and its SHA-256", vcut, sum)
				}
				if len(rec.value) >= len(c.msg.Value) || !bytes.HasPrefix(c.msg.Value, rec.value) {
					t.Errorf("value of %d bytes, want a shorter prefix of the %d bytes", len(rec.value), len(c.msg.Value))
				}
				if c.wantValueLen == -1 && pm.ByteSize(2) != budget {
					t.Errorf("estimated size %d, want the value to fill the budget of %d", pm.ByteSize(2), budget)
				}
			}
			dropped := header(rec.headers, HeaderHeadersDropped)
			if c.headersKept {
				if len(original) != len(originalHeaders(c.msg.Headers)) || dropped != "" {
					t.Errorf("%d original headers (dropped header %q), want all %d", len(original), dropped, len(originalHeaders(c.msg.Headers)))
				}
			} else if len(original) != 0 || dropped != strconv.Itoa(len(originalHeaders(c.msg.Headers))) {
				t.Errorf("%d original headers, dropped header %q, want none and their count", len(original), dropped)
			}
			kcut := header(rec.headers, HeaderKeyCut)
			if c.keyKept {
				if !bytes.Equal(rec.key, c.msg.Key) || kcut != "" {
					t.Errorf("key of %d bytes (cut header %q), want the %d bytes whole", len(rec.key), kcut, len(c.msg.Key))
				}
			} else if len(rec.key) != MaxHeaderValueBytes || kcut != strconv.Itoa(len(c.msg.Key)) || header(rec.headers, HeaderOriginalKeySHA256) == "" {
				t.Errorf("key of %d bytes, cut header %q, want %d bytes and the original size and hash", len(rec.key), kcut, MaxHeaderValueBytes)
			}
		})
	}
}

func TestSmallestDeadLetterRecordKeepsOnlyTheReasons(t *testing.T) {
	msg := &Message{Key: []byte("k"), Value: make([]byte, 10_000), Headers: []Header{{"a", []byte("b")}}}
	rec := encoded(t, smallestDeadLetterRecord("dlq", msg, DeadLetter{ErrorClass: ClassInvalidPayload}))
	if len(rec.value) != 0 || rec.value == nil || string(rec.key) != "k" {
		t.Errorf("key %q and %d bytes of value, want the key and an empty value", rec.key, len(rec.value))
	}
	if header(rec.headers, HeaderValueCut) != "10000" || header(rec.headers, HeaderHeadersDropped) != "1" || header(rec.headers, "a") != "" {
		t.Errorf("headers %v, want the value cut from 10000 bytes and the 1 original header dropped", rec.headers)
	}
}

type record struct {
	key, value []byte
	headers    []Header
}

// encoded is pm as a consumer would read it.
func encoded(t *testing.T, pm *sarama.ProducerMessage) record {
	t.Helper()
	var r record
	var err error
	if pm.Key != nil {
		if r.key, err = pm.Key.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	if pm.Value != nil {
		if r.value, err = pm.Value.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range pm.Headers {
		r.headers = append(r.headers, Header{string(h.Key), h.Value})
	}
	return r
}

func header(hs []Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestIsSizeRefusal(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"The broker's MESSAGE_TOO_LARGE is a size refusal.", sarama.ErrMessageSizeTooLarge, true},
		{"The broker's RECORD_LIST_TOO_LARGE is a size refusal.", sarama.ErrMessageSetSizeTooLarge, true},
		{"The producer's own size check is a size refusal.", sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 2 > 1"), true},
		{"NOT_ENOUGH_REPLICAS is not.", sarama.ErrNotEnoughReplicas, false},
		{"A request timeout is not.", sarama.ErrRequestTimedOut, false},
		{"A closed connection is not.", errors.New("EOF"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := isSizeRefusal(c.err); got != c.want {
				t.Errorf("isSizeRefusal(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}
