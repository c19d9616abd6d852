package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

func TestDemoEndsEveryCaseAsExpected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	results, err := runDemo(ctx, &out, &errOut, demoOptions{caseTimeout: time.Minute})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}

	first := inventory.SeedProducts[0]
	type want struct {
		name          string
		sent          string
		end           string
		class         consumer.ErrorClass
		messageHas    string
		before, after int64
		retried       bool
	}
	wants := []want{
		{name: "valid update", sent: `"inventory_count": 25`, end: endApplied, before: first.Inventory, after: 25},
		{name: "negative count", sent: `"inventory_count": -1`, end: endDeadLettered, class: consumer.ClassValidationFailed,
			messageHas: "Inventory count must be greater than or equal to 0", before: 25, after: 25},
		{name: "unknown product code", sent: `"product_code": "NO_SUCH_CODE"`, end: endDeadLettered, class: consumer.ClassValidationFailed,
			messageHas: "Product code NO_SUCH_CODE does not exist", before: 25, after: 25},
		{name: "not JSON", sent: "this is no good", end: endDeadLettered, class: consumer.ClassInvalidPayload,
			messageHas: "payload is not a JSON object", before: 25, after: 25},
		{name: "unexpected attributes", sent: `{"greeting": "hello"}`, end: endDeadLettered, class: consumer.ClassUnexpectedAttributes,
			messageHas: "unexpected attributes: greeting", before: 25, after: 25},
		{name: "database down", sent: `"inventory_count": 30`, end: endApplied, before: 25, after: 30, retried: true},
	}
	if len(results) != len(wants) {
		t.Fatalf("got %d results, want %d: %+v", len(results), len(wants), results)
	}
	for i, w := range wants {
		r := results[i]
		t.Run(w.name, func(t *testing.T) {
			if r.Case != w.name {
				t.Fatalf("case %d is %q, want %q", i, r.Case, w.name)
			}
			if !r.OK || len(r.Problems) > 0 {
				t.Errorf("not OK: %v", r.Problems)
			}
			if !strings.Contains(r.Sent, w.sent) {
				t.Errorf("sent %q, want it to contain %q", r.Sent, w.sent)
			}
			if r.Offset != int64(i) {
				t.Errorf("sent at offset %d, want %d (one message per case, in order)", r.Offset, i)
			}
			if r.Product != first.Code || r.Before != w.before || r.After != w.after {
				t.Errorf("%s inventory %d -> %d, want %s %d -> %d", r.Product, r.Before, r.After, first.Code, w.before, w.after)
			}
			if r.End != w.end {
				t.Errorf("ended %q, want %q", r.End, w.end)
			}
			if r.ErrorClass != string(w.class) {
				t.Errorf("error class (from the dead-letter record) %q, want %q", r.ErrorClass, w.class)
			}
			if !strings.Contains(r.ErrorMessage, w.messageHas) {
				t.Errorf("error message (from the dead-letter record) %q, want it to contain %q", r.ErrorMessage, w.messageHas)
			}
			if w.retried && (r.Retries < 1 || r.RetryClass != string(consumer.ClassDatabaseUnavailable)) {
				t.Errorf("retried %d times for %q, want at least once for %s", r.Retries, r.RetryClass, consumer.ClassDatabaseUnavailable)
			}
			if !w.retried && r.Retries != 0 {
				t.Errorf("retried %d times, want none", r.Retries)
			}
		})
	}

	text := out.String()
	for _, line := range []string{
		"CASE", "AS EXPECTED", "ENDED",
		"dead-letter topic: ValidationFailed: Inventory count must be greater than or equal to 0",
		"dead-letter topic: UnexpectedAttributes: unexpected attributes: greeting",
		"(DatabaseUnavailable), then applied",
		"All 6 cases ended as expected.",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("the printed table lacks %q", line)
		}
	}
}

func TestDemoCaseCheckReportsEveryDeviation(t *testing.T) {
	cases := demoCases()
	valid, negative, down := cases[0], cases[1], cases[5]
	tests := []struct {
		name string
		dc   demoCase
		r    demoResult
		want []string
	}{
		{"A valid update that was applied passes.", valid,
			demoResult{End: endApplied, After: 25}, nil},
		{"A valid update that was dead-lettered fails on the outcome and the inventory.", valid,
			demoResult{End: endDeadLettered, ErrorClass: "DatabaseError", After: 10},
			[]string{"ended dead-lettered, want applied", "inventory is 10, want 25"}},
		{"A negative count dead-lettered for the wrong reason fails on class and message.", negative,
			demoResult{End: endDeadLettered, ErrorClass: "InvalidPayload", ErrorMessage: "nope", After: 10},
			[]string{"error class InvalidPayload, want ValidationFailed", `error message "nope" does not say "Inventory count must be greater than or equal to 0"`}},
		{"A negative count that changed the inventory fails.", negative,
			demoResult{End: endDeadLettered, ErrorClass: "ValidationFailed", ErrorMessage: inventory.MsgInventoryCountNegative, After: -1},
			[]string{"inventory changed from 10 to -1"}},
		{"A database-down update applied without a retry fails.", down,
			demoResult{End: endApplied, After: 30}, []string{"it was not retried"}},
		{"A database-down update retried for another class fails.", down,
			demoResult{End: endApplied, After: 30, Retries: 2, RetryClass: "DeadLetterUnavailable"},
			[]string{"retried for DeadLetterUnavailable, want DatabaseUnavailable"}},
		{"A message that never ended fails.", negative,
			demoResult{End: endNone, After: 10}, []string{"ended no outcome, want dead-lettered"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.dc.check(tc.r, 10)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got problems %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDemoFailsWhenACaseDoesNotEndAsExpected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cases := demoCases()[:2]
	// Claim that the negative count is applied: the real consumer dead-letters it.
	wrong := cases[1]
	wrong.end, wrong.wantApplied, wrong.count, wrong.expectedText = endApplied, true, -1, "applied"
	cases[1] = wrong
	var out, errOut bytes.Buffer
	results, err := runDemo(ctx, &out, &errOut, demoOptions{caseTimeout: time.Minute, cases: cases, keep: true})
	if err == nil || err.Error() != "1 of 2 cases did not end as expected" {
		t.Fatalf("got %v, want the demo to report 1 of 2 cases not as expected\n%s", err, out.String())
	}
	if len(results) != 2 || !results[0].OK || results[1].OK {
		t.Fatalf("results %+v, want the first as expected and the second not", results)
	}
	want := []string{"ended dead-lettered, want applied", "inventory is 25, want -1"}
	if strings.Join(results[1].Problems, "|") != strings.Join(want, "|") {
		t.Errorf("problems %q, want %q", results[1].Problems, want)
	}
	text := out.String()
	if !strings.Contains(text, "negative count: expected applied, but ended dead-lettered, want applied") {
		t.Errorf("the output does not explain the failure:\n%s", text)
	}
	// --keep leaves the directory with the database, the consumer config and its log.
	i := strings.Index(text, "Kept ")
	if i < 0 {
		t.Fatalf("--keep did not say where:\n%s", text)
	}
	dir := strings.TrimSpace(strings.TrimSuffix(strings.SplitN(text[i+len("Kept "):], " ", 2)[0], "\n"))
	defer os.RemoveAll(dir)
	for _, f := range []string{"inventory.sqlite3", consumer.ConfigFileName, "consumer.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("--keep: %v", err)
		}
	}
	if !strings.Contains(errOut.String(), "Last lines of the consumer log") {
		t.Errorf("a failed demo did not show the consumer log's tail:\n%s", errOut.String())
	}
}

// BenchmarkDemo measures the whole walk-through: embedded broker and database up, the six
// cases, everything down again.
func BenchmarkDemo(b *testing.B) {
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var out, errOut bytes.Buffer
		if _, err := runDemo(ctx, &out, &errOut, demoOptions{caseTimeout: time.Minute}); err != nil {
			b.Fatalf("demo: %v\n%s%s", err, out.String(), errOut.String())
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/demo")
}
