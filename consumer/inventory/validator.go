package inventory

import (
	"math"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/kafkasub/kafkasub/consumer/validation"
)

// Change is a validated update: set the inventory of the product with Code.
type Change struct {
	Code      string
	Inventory int64
}

// Validation messages, in ActiveModel's wording.
const (
	MsgProductCodeBlank       = "Product code can't be blank"
	MsgProductCodeTooLong     = "Product code is too long (maximum is 64 characters)"
	MsgProductCodeInvalid     = "Product code is invalid (control characters and invalid UTF-8 name no product)"
	MsgInventoryCountBlank    = "Inventory count can't be blank"
	MsgInventoryCountInteger  = "Inventory count must be an integer"
	MsgInventoryCountNegative = "Inventory count must be greater than or equal to 0"
	MsgInventoryCountTooLarge = "Inventory count must be less than or equal to 9223372036854775807"
)

// MsgProductCodeUnknown is the message for a product code no product has.
func MsgProductCodeUnknown(code string) string { return "Product code " + code + " does not exist" }

// codeRules are what a product code must be for a products row to hold it: present, at most
// MaxCodeLength characters, valid UTF-8 without control characters (a NUL, which some
// drivers cut a string at, among them). Only a code that passes them is looked up or
// reaches a statement, so the lookup and the UPDATE compare exactly what was checked.
var codeRules = []validation.Rule{
	validation.Presence(),
	validation.Length{Maximum: MaxCodeLength},
	validation.Format{With: nameable, Message: "is invalid (control characters and invalid UTF-8 name no product)"},
}

// countRules: a count any products.inventory (bigint) can hold and a shop can have.
var countRules = []validation.Rule{
	validation.Presence(),
	validation.Numericality{OnlyInteger: true, GreaterThanOrEqualTo: validation.Int(0), LessThanOrEqualTo: validation.Int(math.MaxInt64)},
}

// Validator is the model of a ProductUpdate, as ActiveModel would declare it:
//
//	validates :product_code, presence: true, length: {maximum: 64}, format: {...}, existence
//	validates :inventory_count, presence: true, numericality: {only_integer: true, greater_than_or_equal_to: 0}
type Validator struct {
	validations validation.Validations[ProductUpdate]
}

// NewValidator returns the validator of updates whose products exist when exists says so
// (it is asked only for a code that passes codeRules).
func NewValidator(exists func(code string) bool) *Validator {
	return &Validator{validations: validation.Validations[ProductUpdate]{
		validation.Validates(AttrProductCode, productCode, append(slices.Clip(codeRules), validation.Existence(exists))...),
		validation.Validates(AttrInventoryCount, inventoryCount, countRules...),
	}}
}

// Validate returns the change u asks for, or a permanent consumer.ClassValidationFailed
// error wrapping validation.Errors with every problem of u.
func (v *Validator) Validate(u *ProductUpdate) (Change, error) {
	if err := v.validations.Validate(u); err != nil {
		return Change{}, err
	}
	return change(u), nil
}

// change is the Change of an update that passed countRules and codeRules.
func change(u *ProductUpdate) Change {
	n, _ := strconv.ParseInt(string(*u.InventoryCount), 10, 64) // validated: an int64
	return Change{Code: *u.ProductCode, Inventory: n}
}

// Validate is NewValidator(exists).Validate(u).
func Validate(u *ProductUpdate, exists func(code string) bool) (Change, error) {
	return NewValidator(exists).Validate(u)
}

// statelessValidations are the Validator's rules that need no database: all but existence.
var statelessValidations = validation.Validations[ProductUpdate]{
	validation.Validates(AttrProductCode, productCode, codeRules...),
	validation.Validates(AttrInventoryCount, inventoryCount, countRules...),
}

// Candidate returns the change u asks for when u passes every rule that needs no
// database; whether its product exists is for the statement that applies it to find out.
func Candidate(u *ProductUpdate) (Change, bool) {
	if !statelessValidations.Valid(u) {
		return Change{}, false
	}
	return change(u), true
}

// CodeToLookUp returns u's product code if it can name a products row at all (it passes
// codeRules); the service looks up only such codes.
func CodeToLookUp(u *ProductUpdate) (string, bool) {
	if u.ProductCode == nil || validation.Check(*u.ProductCode, codeRules...) != "" {
		return "", false
	}
	return *u.ProductCode, true
}

func productCode(u *ProductUpdate) any {
	if u.ProductCode == nil {
		return nil
	}
	return *u.ProductCode
}

func inventoryCount(u *ProductUpdate) any {
	if u.InventoryCount == nil {
		return nil
	}
	return *u.InventoryCount
}

// nameable reports whether code is valid UTF-8 without control characters (C0, DEL, C1)
// or line and paragraph separators.
func nameable(code string) bool {
	if !utf8.ValidString(code) {
		return false
	}
	for _, r := range code {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}
