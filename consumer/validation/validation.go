// Package validation declares what makes a message valid the way Rails' ActiveModel does,
//
//	validates :inventory_count, presence: true, numericality: {only_integer: true, greater_than_or_equal_to: 0}
//
// reads
//
//	validation.Validates("inventory_count", count, validation.Presence(),
//		validation.Numericality{OnlyInteger: true, GreaterThanOrEqualTo: validation.Int(0)})
//
// and collects every problem of a message as ActiveModel's full messages ("Inventory count
// must be greater than or equal to 0"), in the order the validations are declared. An
// attribute's rules run in order and stop at its first problem, so a blank code is not
// also reported as unknown.
package validation

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kafkasub/kafkasub/consumer"
)

// Rule checks one attribute's value. It returns what is wrong, worded to follow the
// attribute's name ("can't be blank"), or "" when nothing is. A value is a string, a
// json.Number, an int64 or nil (absent: the attribute's pointer was nil).
type Rule interface {
	Check(value any) string
}

// RuleFunc adapts a function to Rule.
type RuleFunc func(value any) string

// Check implements Rule.
func (f RuleFunc) Check(value any) string { return f(value) }

// Validation is one `validates :attribute, rules...` of a model M.
type Validation[M any] struct {
	attribute string
	value     func(*M) any
	rules     []Rule
}

// Validates declares rules for the attribute whose value value returns (nil when absent).
// The attribute is named as the message spells it (product_code); full messages humanize
// it (Product code).
func Validates[M any](attribute string, value func(*M) any, rules ...Rule) Validation[M] {
	return Validation[M]{attribute: attribute, value: value, rules: rules}
}

// Validations are a model's declared validations.
type Validations[M any] []Validation[M]

// Errors returns every problem of m as full messages, nil when m is valid.
func (vs Validations[M]) Errors(m *M) Errors {
	var errs Errors
	for _, v := range vs {
		if msg := Check(v.value(m), v.rules...); msg != "" {
			errs = append(errs, Humanize(v.attribute)+" "+msg)
		}
	}
	return errs
}

// Valid reports whether m has no problem; it stops at the first one and builds no
// messages (a batch's invalid messages are checked before their full messages are due).
func (vs Validations[M]) Valid(m *M) bool {
	for _, v := range vs {
		if Check(v.value(m), v.rules...) != "" {
			return false
		}
	}
	return true
}

// Validate is Errors as an error: nil when m is valid, else a permanent
// consumer.ClassValidationFailed error wrapping the Errors.
func (vs Validations[M]) Validate(m *M) error {
	if errs := vs.Errors(m); len(errs) > 0 {
		return consumer.Permanent(consumer.ClassValidationFailed, errs)
	}
	return nil
}

// Check runs rules on value in order and returns the first problem, "" when there is none.
func Check(value any, rules ...Rule) string {
	for _, r := range rules {
		if msg := r.Check(value); msg != "" {
			return msg
		}
	}
	return ""
}

// Errors are a model's full messages, like ActiveModel's errors.full_messages.
type Errors []string

func (e Errors) Error() string { return strings.Join(e, "; ") }

// Humanize turns an attribute name into the words a message starts with, as ActiveModel's
// humanize does: product_code -> Product code.
func Humanize(attribute string) string {
	s := strings.ReplaceAll(strings.TrimSuffix(attribute, "_id"), "_", " ")
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return strings.ToUpper(string(r)) + s[size:]
}

// Presence is `presence: true`: the value is there and, if a string, not blank.
func Presence() Rule {
	return RuleFunc(func(v any) string {
		if v == nil {
			return "can't be blank"
		}
		if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
			return "can't be blank"
		}
		return ""
	})
}

// Length is `length: {maximum: n}` on a string, counted in characters. An absent value
// passes (Presence is its own rule).
type Length struct {
	Maximum int
}

// Check implements Rule.
func (l Length) Check(v any) string {
	if s, ok := v.(string); ok && utf8.RuneCountInString(s) > l.Maximum {
		return fmt.Sprintf("is too long (maximum is %d characters)", l.Maximum)
	}
	return ""
}

// Format is `format: {with: ...}` with a function in place of the regular expression
// (a Go regexp reads invalid UTF-8 as U+FFFD, so it cannot refuse it). Message defaults to
// ActiveModel's "is invalid". An absent value passes.
type Format struct {
	With    func(string) bool
	Message string
}

// Check implements Rule.
func (f Format) Check(v any) string {
	if s, ok := v.(string); ok && !f.With(s) {
		if f.Message == "" {
			return "is invalid"
		}
		return f.Message
	}
	return ""
}

// Inclusion is `inclusion: {in: [...]}`: a string value is one of in. An absent value
// passes.
func Inclusion(in ...string) Rule {
	return RuleFunc(func(v any) string {
		if s, ok := v.(string); ok && !slices.Contains(in, s) {
			return "is not included in the list"
		}
		return ""
	})
}

// Numericality is `numericality: {...}` on a JSON number literal (json.Number, a string)
// or an int64. Bounds are int64 and compare exactly, whatever the literal's size. An absent
// value passes.
type Numericality struct {
	// OnlyInteger: digits with an optional sign, no fraction or exponent ("25.0" is not an
	// integer), as ActiveModel's only_integer.
	OnlyInteger          bool
	GreaterThanOrEqualTo *int64
	LessThanOrEqualTo    *int64
}

// Int returns a bound for Numericality.
func Int(n int64) *int64 { return &n }

// Check implements Rule.
func (n Numericality) Check(v any) string {
	var lit string
	switch t := v.(type) {
	case nil:
		return ""
	case int64:
		return n.bounds(float64(t), t, true)
	case json.Number:
		lit = string(t)
	case string:
		lit = t
	default:
		return "is not a number"
	}
	if n.OnlyInteger || isInteger(lit) {
		if !isInteger(lit) {
			return "must be an integer"
		}
		i, err := strconv.ParseInt(lit, 10, 64)
		if err != nil { // beyond int64: below or above every bound
			if lit[0] == '-' {
				return n.bounds(math.Inf(-1), math.MinInt64, false)
			}
			return n.bounds(math.Inf(1), math.MaxInt64, false)
		}
		return n.bounds(float64(i), i, true)
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range is ±Inf or 0: compared as such
		return "is not a number"
	}
	return n.bounds(f, 0, false)
}

// bounds compares a number with the bounds: as i when exact, else as f.
func (n Numericality) bounds(f float64, i int64, exact bool) string {
	if b := n.GreaterThanOrEqualTo; b != nil && ((exact && i < *b) || (!exact && f < float64(*b))) {
		return fmt.Sprintf("must be greater than or equal to %d", *b)
	}
	if b := n.LessThanOrEqualTo; b != nil && ((exact && i > *b) || (!exact && f > float64(*b))) {
		return fmt.Sprintf("must be less than or equal to %d", *b)
	}
	return ""
}

// isInteger reports whether lit is digits with an optional minus sign.
func isInteger(lit string) bool {
	lit = strings.TrimPrefix(lit, "-")
	if lit == "" {
		return false
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] < '0' || lit[i] > '9' {
			return false
		}
	}
	return true
}

// Existence is the rule ActiveRecord spells `belongs_to` (a row with this key exists),
// answered by exists; the message is "<value> does not exist". An absent value passes.
func Existence(exists func(string) bool) Rule {
	return RuleFunc(func(v any) string {
		if s, ok := v.(string); ok && !exists(s) {
			return s + " does not exist"
		}
		return ""
	})
}
