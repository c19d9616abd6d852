package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// The mission's example payloads, shared by `kafkasub produce --example` and the demo.
const (
	ExampleValid                = "valid"
	ExampleNegativeCount        = "negative-count"
	ExampleUnknownCode          = "unknown-code"
	ExampleNotJSON              = "not-json"
	ExampleUnexpectedAttributes = "unexpected-attributes"
)

// UnknownProductCode is the product code of the unknown-code example.
const UnknownProductCode = "NO_SUCH_CODE"

// DefaultExampleCount is the inventory count of the valid example.
const DefaultExampleCount = 25

// example is one of the mission's payloads for the product with code (the first seeded
// product when empty) and, for the valid example, the inventory count.
type example struct {
	Name string
	// Value is the payload; Code the product code it names ("" when it names none).
	Value string
	Code  string
}

// exampleNames lists the names --example accepts.
func exampleNames() []string {
	names := []string{ExampleValid, ExampleNegativeCount, ExampleUnknownCode, ExampleNotJSON, ExampleUnexpectedAttributes}
	sort.Strings(names)
	return names
}

// buildExample returns the named example. code "" is the first seeded product's code.
func buildExample(name, code string, count int64) (example, error) {
	if code == "" {
		code = inventory.SeedProducts[0].Code
	}
	productUpdate := func(code string, n int64) string {
		return fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, code, n)
	}
	switch name {
	case ExampleValid:
		return example{Name: name, Value: productUpdate(code, count), Code: code}, nil
	case ExampleNegativeCount:
		return example{Name: name, Value: productUpdate(code, -1), Code: code}, nil
	case ExampleUnknownCode:
		return example{Name: name, Value: productUpdate(UnknownProductCode, 5), Code: UnknownProductCode}, nil
	case ExampleNotJSON:
		return example{Name: name, Value: "this is no good"}, nil
	case ExampleUnexpectedAttributes:
		return example{Name: name, Value: `{"greeting": "hello"}`}, nil
	}
	return example{}, fmt.Errorf("--example: %q is not an example; choose one of %s", name, strings.Join(exampleNames(), ", "))
}
