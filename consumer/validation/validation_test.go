package validation_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/validation"
)

func TestRules(t *testing.T) {
	upper := func(s string) bool { return s == "" || s[0] >= 'A' && s[0] <= 'Z' }
	count := validation.Numericality{OnlyInteger: true, GreaterThanOrEqualTo: validation.Int(0), LessThanOrEqualTo: validation.Int(100)}
	ratio := validation.Numericality{GreaterThanOrEqualTo: validation.Int(0), LessThanOrEqualTo: validation.Int(1)}
	for _, tc := range []struct {
		name  string
		rule  validation.Rule
		value any
		want  string
	}{
		{"Presence refuses an absent value", validation.Presence(), nil, "can't be blank"},
		{"Presence refuses an empty string", validation.Presence(), "", "can't be blank"},
		{"Presence refuses a string of white space", validation.Presence(), " \t\n", "can't be blank"},
		{"Presence accepts a string with a character", validation.Presence(), " a ", ""},
		{"Presence accepts a number", validation.Presence(), json.Number("0"), ""},
		{"Length accepts a string of the maximum in characters", validation.Length{Maximum: 3}, "äöü", ""},
		{"Length refuses a string over the maximum", validation.Length{Maximum: 3}, "abcd", "is too long (maximum is 3 characters)"},
		{"Length leaves an absent value to Presence", validation.Length{Maximum: 3}, nil, ""},
		{"Format accepts what its function accepts", validation.Format{With: upper}, "Abc", ""},
		{"Format says is invalid by default", validation.Format{With: upper}, "abc", "is invalid"},
		{"Format says its own message", validation.Format{With: upper, Message: "must start with a capital"}, "abc", "must start with a capital"},
		{"Inclusion accepts a value in the list", validation.Inclusion("paid", "shipped"), "paid", ""},
		{"Inclusion refuses a value not in the list", validation.Inclusion("paid", "shipped"), "Paid", "is not included in the list"},
		{"Inclusion leaves an absent value to Presence", validation.Inclusion("paid"), nil, ""},
		{"Numericality accepts an integer in range", count, json.Number("100"), ""},
		{"Numericality accepts negative zero as zero", count, json.Number("-0"), ""},
		{"Numericality with only_integer refuses a fraction", count, json.Number("1.5"), "must be an integer"},
		{"Numericality with only_integer refuses an exponent", count, json.Number("1e2"), "must be an integer"},
		{"Numericality refuses a number below the lower bound", count, json.Number("-1"), "must be greater than or equal to 0"},
		{"Numericality refuses a number above the upper bound", count, json.Number("101"), "must be less than or equal to 100"},
		{"Numericality compares a literal beyond int64 exactly", count, json.Number("-99999999999999999999"), "must be greater than or equal to 0"},
		{"Numericality compares a large literal with the upper bound", count, json.Number("99999999999999999999"), "must be less than or equal to 100"},
		{"Numericality checks an int64", count, int64(-5), "must be greater than or equal to 0"},
		{"Numericality without only_integer accepts a fraction in range", ratio, json.Number("0.25"), ""},
		{"Numericality without only_integer compares a fraction", ratio, json.Number("1.5"), "must be less than or equal to 1"},
		{"Numericality without only_integer compares an exponent", ratio, json.Number("-1e-3"), "must be greater than or equal to 0"},
		{"Numericality refuses a string that is no number", ratio, "one", "is not a number"},
		{"Numericality leaves an absent value to Presence", count, nil, ""},
		{"Existence accepts a value that exists", validation.Existence(func(s string) bool { return s == "A" }), "A", ""},
		{"Existence names a value that does not exist", validation.Existence(func(s string) bool { return s == "A" }), "B", "B does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rule.Check(tc.value); got != tc.want {
				t.Fatalf("Check(%#v) = %q, want %q", tc.value, got, tc.want)
			}
		})
	}
}

type order struct {
	ID     *string
	Status *string
	Items  *json.Number
}

func TestValidations(t *testing.T) {
	str := func(s string) *string { return &s }
	num := func(s string) *json.Number { n := json.Number(s); return &n }
	asked := 0
	validations := validation.Validations[order]{
		validation.Validates("order_id", func(o *order) any { return deref(o.ID) }, validation.Presence(),
			validation.Existence(func(string) bool { asked++; return false })),
		validation.Validates("status", func(o *order) any { return deref(o.Status) }, validation.Presence(),
			validation.Inclusion("shipped")),
		validation.Validates("items", func(o *order) any {
			if o.Items == nil {
				return nil
			}
			return *o.Items
		}, validation.Numericality{OnlyInteger: true, GreaterThanOrEqualTo: validation.Int(1)}),
	}
	for _, tc := range []struct {
		name  string
		order order
		want  []string
		asked int
	}{
		{name: "Every problem is a full message, in the order declared", order: order{ID: str("O-1"), Status: str("lost"), Items: num("0")},
			want: []string{"Order O-1 does not exist", "Status is not included in the list", "Items must be greater than or equal to 1"}, asked: 1},
		{name: "An attribute stops at its first problem", order: order{ID: str(" "), Status: str("shipped"), Items: num("2")},
			want: []string{"Order can't be blank"}},
		{name: "An absent attribute without presence passes", order: order{ID: nil, Status: str("shipped")},
			want: []string{"Order can't be blank"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked = 0
			err := validations.Validate(&tc.order)
			var errs validation.Errors
			if !errors.As(err, &errs) || !consumer.IsPermanent(err) || consumer.ClassOf(err) != consumer.ClassValidationFailed {
				t.Fatalf("Validate: %v, want a permanent ValidationFailed validation.Errors", err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %q, want %q", []string(errs), tc.want)
			}
			for i := range errs {
				if errs[i] != tc.want[i] {
					t.Fatalf("errors %q, want %q", []string(errs), tc.want)
				}
			}
			if asked != tc.asked {
				t.Fatalf("existence asked %d times, want %d", asked, tc.asked)
			}
			if validations.Valid(&tc.order) {
				t.Fatal("Valid: true for an order with problems")
			}
		})
	}
	if err := validations.Validate(&order{ID: str(""), Status: str("shipped")}); err == nil {
		t.Fatal("a blank id was accepted")
	}
	shipped := order{ID: str("O-1"), Status: str("shipped"), Items: num("2")}
	if stateless := validations[1:]; !stateless.Valid(&shipped) || stateless.Errors(&shipped) != nil {
		t.Fatalf("Valid %v, Errors %q for a valid order, want true and none", stateless.Valid(&shipped), stateless.Errors(&shipped))
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func TestHumanize(t *testing.T) {
	for in, want := range map[string]string{
		"product_code":    "Product code",
		"inventory_count": "Inventory count",
		"order_id":        "Order",
		"status":          "Status",
		"":                "",
	} {
		if got := validation.Humanize(in); got != want {
			t.Errorf("Humanize(%q) = %q, want %q", in, got, want)
		}
	}
}
