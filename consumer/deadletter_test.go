package consumer

import (
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

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
