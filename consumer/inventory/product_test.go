package inventory_test

import (
	"strings"
	"testing"

	"github.com/kafkasub/kafkasub/consumer/inventory"
)

func TestCodeFormatProblem(t *testing.T) {
	for code, want := range map[string]string{
		"KB-MECH-001":               "",
		"Straße-Ω-42":               "",
		strings.Repeat("é", 64):     "",
		strings.Repeat("é", 65):     inventory.MsgProductCodeTooLong,
		"KB-MECH-001\x00":           inventory.MsgProductCodeInvalid,
		"\x00KB-MECH-001":           inventory.MsgProductCodeInvalid,
		"KB\x01MECH":                inventory.MsgProductCodeInvalid,
		"KB\x7fMECH":                inventory.MsgProductCodeInvalid,
		"KB\u0085MECH":              inventory.MsgProductCodeInvalid,
		"KB\u2028MECH":              inventory.MsgProductCodeInvalid,
		"KB-MECH-001\n":             inventory.MsgProductCodeInvalid,
		"KB-MECH-\xff":              inventory.MsgProductCodeInvalid,
		"KB-MECH-\xed\xa0\x80":      inventory.MsgProductCodeInvalid, // an encoded surrogate
		strings.Repeat("x", 64<<10): inventory.MsgProductCodeTooLong,
	} {
		if got := inventory.CodeFormatProblem(code); got != want {
			t.Errorf("CodeFormatProblem(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestValidateNamesACodeNoRowCanHave(t *testing.T) {
	code := "KB-MECH-001\x00"
	u := &inventory.ProductUpdate{ProductCode: &code}
	asked := false
	_, err := inventory.Validate(u, func(string) bool { asked = true; return true })
	if err == nil || !strings.Contains(err.Error(), inventory.MsgProductCodeInvalid) {
		t.Fatalf("Validate: %v, want %q", err, inventory.MsgProductCodeInvalid)
	}
	if asked {
		t.Error("a code no row can have was looked up")
	}
}
