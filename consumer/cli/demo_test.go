package cli

import (
	"bytes"
	"context"
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
