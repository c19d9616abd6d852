package orderstatus

import (
	"errors"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/validation"
)

// StatusUpdate is the message, as decoded: an absent (or null) field is nil.
type StatusUpdate struct {
	OrderID *string `json:"order_id"`
	Status  *string `json:"status"`
}

// Decode reads a StatusUpdate strictly: one JSON object in valid UTF-8 without duplicate
// keys, fields of the right type (consumer.ClassInvalidPayload), and no attribute the
// message does not define (consumer.ClassUnexpectedAttributes).
func Decode(payload []byte) (*StatusUpdate, error) {
	var u StatusUpdate
	err := json.Unmarshal(payload, &u, json.RejectUnknownMembers(true))
	switch {
	case err == nil:
		return &u, nil
	case errors.Is(err, json.ErrUnknownName):
		return nil, consumer.Permanent(consumer.ClassUnexpectedAttributes, err)
	}
	return nil, consumer.Permanent(consumer.ClassInvalidPayload, err)
}

// idRules are what an order id must be for a row to hold it; only an id that passes them
// is looked up, so the lookup and the UPDATE see exactly what was checked.
var idRules = []validation.Rule{
	validation.Presence(),
	validation.Length{Maximum: MaxIDLength},
	validation.Format{With: printable},
}

// IDToLookUp returns u's order id if it can name an orders row.
func IDToLookUp(u *StatusUpdate) (string, bool) {
	if u.OrderID == nil || validation.Check(*u.OrderID, idRules...) != "" {
		return "", false
	}
	return *u.OrderID, true
}

// Validate checks u against the orders of its batch (statuses: id -> current status) and
// returns nil or a permanent consumer.ClassValidationFailed error with every problem:
//
//	validates :order_id, presence: true, length: {maximum: 64}, format: {...}, existence
//	validates :status, presence: true, inclusion: {in: STATUSES}, and a final status stays
func Validate(u *StatusUpdate, statuses map[string]string) error {
	current := ""
	if id, ok := IDToLookUp(u); ok {
		current = statuses[id]
	}
	return validation.Validations[StatusUpdate]{
		validation.Validates("order_id", orderID, append(slices.Clip(idRules),
			validation.Existence(func(id string) bool { _, ok := statuses[id]; return ok }))...),
		validation.Validates("status", status, validation.Presence(), validation.Inclusion(Statuses...),
			validation.RuleFunc(func(v any) string {
				if slices.Contains(FinalStatuses, current) && v != current {
					return "can't change once the order is " + current
				}
				return ""
			})),
	}.Validate(u)
}

func orderID(u *StatusUpdate) any {
	if u.OrderID == nil {
		return nil
	}
	return *u.OrderID
}

func status(u *StatusUpdate) any {
	if u.Status == nil {
		return nil
	}
	return *u.Status
}

// printable: valid UTF-8 without control characters (a NUL, which PostgreSQL refuses in
// text, among them).
func printable(s string) bool {
	return utf8.ValidString(s) && !slices.ContainsFunc([]rune(s), unicode.IsControl)
}
