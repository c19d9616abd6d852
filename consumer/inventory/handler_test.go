package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
)

// fakeService records what the handler hands it and answers with outcomes.
type fakeService struct {
	tx       *gorm.DB
	got      []string // each update as code=count
	outcomes func(i int) error
	err      error
}

func (f *fakeService) SetInventories(_ context.Context, tx *gorm.DB, updates []*ProductUpdate) ([]error, error) {
	f.tx = tx
	for _, u := range updates {
		f.got = append(f.got, fmt.Sprintf("%s=%s", deref(u.ProductCode), derefNum(u.InventoryCount)))
	}
	if f.err != nil {
		return nil, f.err
	}
	results := make([]error, len(updates))
	for i := range updates {
		results[i] = f.outcomes(i)
	}
	return results, nil
}

// The handler's only job: decode the messages, hand the updates to the service in the
// runtime's transaction, and put each outcome on the message it came from.
func TestHandlerMapsMessagesToTheServiceAndOutcomesBack(t *testing.T) {
	refused := consumer.Permanentf(consumer.ClassValidationFailed, "refused by the service")
	outage := consumer.Transient(consumer.ClassDatabaseUnavailable, errors.New("connection refused"))
	for _, tc := range []struct {
		name     string
		payloads []string
		outcomes func(i int) error
		err      error
		service  []string // what the service is handed
		results  []string // per message: "" applied, else its error's class
		batchErr error
	}{
		{name: "A message that decodes is handed to the service and gets its outcome",
			payloads: []string{`{"product_code": "A", "inventory_count": 1}`},
			outcomes: func(int) error { return nil }, service: []string{"A=1"}, results: []string{""}},
		{name: "A message that does not decode gets its decode error and never reaches the service",
			payloads: []string{`this is no good`, `{"greeting": "hello"}`},
			service:  nil, results: []string{"InvalidPayload", "UnexpectedAttributes"}},
		{name: "Outcomes go back to their messages around messages that did not decode",
			payloads: []string{`{"product_code": "A", "inventory_count": 1}`, `[]`, `{"product_code": "B", "inventory_count": -2}`, `{"product_code": "C"}`},
			outcomes: func(i int) error { return []error{nil, refused, nil}[i] },
			service:  []string{"A=1", "B=-2", "C="}, results: []string{"", "InvalidPayload", "ValidationFailed", ""}},
		{name: "A batch error of the service is the batch's error",
			payloads: []string{`{"product_code": "A", "inventory_count": 1}`, `nope`},
			err:      outage, service: []string{"A=1"}, batchErr: outage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &fakeService{outcomes: tc.outcomes, err: tc.err}
			h := &Handler{service: svc}
			tx := &gorm.DB{}
			msgs := make([]*consumer.Message, len(tc.payloads))
			for i, p := range tc.payloads {
				msgs[i] = &consumer.Message{Topic: "t", Offset: int64(i), Value: []byte(p)}
			}
			results, err := h.HandleBatch(context.Background(), tx, msgs)
			if !slices.Equal(svc.got, tc.service) {
				t.Errorf("the service was handed %q, want %q", svc.got, tc.service)
			}
			if svc.tx != tx {
				t.Errorf("the service was handed transaction %p, want the runtime's %p", svc.tx, tx)
			}
			if tc.batchErr != nil {
				if err != tc.batchErr || results != nil {
					t.Fatalf("HandleBatch = %v, %v; want the service's batch error %v", results, err, tc.batchErr)
				}
				return
			}
			if err != nil || len(results) != len(msgs) {
				t.Fatalf("HandleBatch = %v, %v; want %d results", results, err, len(msgs))
			}
			for i, want := range tc.results {
				if got := string(consumer.ClassOf(results[i])); got != want {
					t.Errorf("message %d: %v (class %q), want class %q", i, results[i], got, want)
				}
			}
		})
	}
}
