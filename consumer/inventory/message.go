package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/kafkasub/kafkasub/consumer"
)

// ProductUpdate is the message the Inventory Management system sends, as decoded: a field
// that is absent (or null) is nil.
type ProductUpdate struct {
	ProductCode    *string      `json:"product_code"`
	InventoryCount *json.Number `json:"inventory_count"`
}

// Attribute names of ProductUpdate.
const (
	AttrProductCode    = "product_code"
	AttrInventoryCount = "inventory_count"
)

// Decode reads a ProductUpdate strictly. A payload that is not one JSON object in valid
// UTF-8 (no byte order mark, no data after it, no duplicate keys, no unpaired surrogate
// escapes), or a field of the wrong type, is a permanent consumer.ClassInvalidPayload error
// saying what is wrong; attributes the message does not define are a permanent
// consumer.ClassUnexpectedAttributes error naming them. product_code is kept exactly as
// the JSON spells it (control characters included) and inventory_count as its literal:
// what they may be is the Validator's business.
func Decode(payload []byte) (*ProductUpdate, error) {
	if err := checkText(payload); err != nil {
		return nil, err
	}
	d := getDecoder(payload)
	defer putDecoder(d)
	dec := &d.dec
	if k := dec.PeekKind(); k != '{' {
		return nil, notAnObject(dec, payload)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, syntaxError(err, payload)
	}
	var u ProductUpdate
	var unexpected []string
	var codeKind, countKind jsontext.Kind // of a present, non-null value of the wrong type
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken() // duplicate names are an error here
		if err != nil {
			return nil, syntaxError(err, payload)
		}
		switch key := name.String(); key {
		case AttrProductCode:
			switch k := dec.PeekKind(); k {
			case '"':
				tok, err := dec.ReadToken()
				if err != nil {
					return nil, syntaxError(err, payload)
				}
				s := tok.String()
				u.ProductCode = &s
			default:
				if k != 'n' {
					codeKind = k
				}
				if err := dec.SkipValue(); err != nil {
					return nil, syntaxError(err, payload)
				}
			}
		case AttrInventoryCount:
			switch k := dec.PeekKind(); k {
			case '0':
				v, err := dec.ReadValue()
				if err != nil {
					return nil, syntaxError(err, payload)
				}
				n := json.Number(v)
				u.InventoryCount = &n
			default:
				if k != 'n' {
					countKind = k
				}
				if err := dec.SkipValue(); err != nil {
					return nil, syntaxError(err, payload)
				}
			}
		default:
			unexpected = append(unexpected, key)
			if err := dec.SkipValue(); err != nil {
				return nil, syntaxError(err, payload)
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return nil, syntaxError(err, payload)
	}
	if err := checkTrailing(payload, dec.InputOffset()); err != nil {
		return nil, err
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		return nil, consumer.Permanentf(consumer.ClassUnexpectedAttributes, "unexpected attributes: %s", strings.Join(unexpected, ", "))
	}
	if codeKind != 0 {
		return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "%s must be a string, got %s", AttrProductCode, kindName(codeKind))
	}
	if countKind != 0 {
		return nil, consumer.Permanentf(consumer.ClassInvalidPayload, "%s must be a number, got %s", AttrInventoryCount, kindName(countKind))
	}
	return &u, nil
}

// notAnObjectPrefix starts the message of every payload that is not one well-formed object.
const notAnObjectPrefix = "payload is not a JSON object: "

func invalidPayload(format string, args ...any) error {
	return consumer.Permanentf(consumer.ClassInvalidPayload, notAnObjectPrefix+format, args...)
}

// checkText rejects what is wrong with the payload as text before any JSON is read.
func checkText(payload []byte) error {
	switch {
	case len(payload) == 0:
		return invalidPayload("the payload is empty")
	case skipSpace(payload, 0) == len(payload):
		return invalidPayload("the payload is only whitespace")
	case bytes.HasPrefix(payload, []byte("\xef\xbb\xbf")):
		return invalidPayload("it starts with a byte order mark (U+FEFF)")
	case !utf8.Valid(payload):
		i := 0
		for i < len(payload) {
			r, size := utf8.DecodeRune(payload[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return invalidPayload("invalid UTF-8 at byte %d", i)
	}
	return nil
}

// checkTrailing rejects anything but whitespace after the object, which ends at end.
func checkTrailing(payload []byte, end int64) error {
	i := skipSpace(payload, int(end))
	if i == len(payload) {
		return nil
	}
	r, _ := utf8.DecodeRune(payload[i:])
	return invalidPayload("invalid character %s after top-level value at byte %d", strconv.QuoteRune(r), i)
}

// notAnObject describes a payload whose first value is not an object: the value's kind if
// it is one well-formed value, else what is wrong with it.
func notAnObject(dec *jsontext.Decoder, payload []byte) error {
	k := dec.PeekKind()
	if _, err := dec.ReadValue(); err != nil {
		return syntaxError(err, payload)
	}
	if err := checkTrailing(payload, dec.InputOffset()); err != nil {
		return err
	}
	if k == 'n' {
		return invalidPayload("null")
	}
	return invalidPayload("a JSON %s", kindName(k))
}

// syntaxError turns a jsontext error into an InvalidPayload error that says what is wrong
// and where, in our words where jsontext's would be unclear.
func syntaxError(err error, payload []byte) error {
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return invalidPayload("unexpected end of JSON input")
		}
		return invalidPayload("%v", err)
	}
	at := se.ByteOffset
	where := ""
	if errors.Is(se.Err, jsontext.ErrDuplicateName) {
		if parent := se.JSONPointer.Parent(); parent != "" {
			where = " in " + quoteName(string(parent))
		}
		return invalidPayload("duplicate key %s%s at byte %d", quoteName(se.JSONPointer.LastToken()), where, at)
	}
	if se.JSONPointer != "" {
		where = " in " + quoteName(string(se.JSONPointer))
	}
	// jsontext says "invalid surrogate pair" and quotes the text after the escape.
	if at >= 0 && at <= int64(len(payload)) && strings.HasPrefix(se.Err.Error(), "invalid surrogate pair") {
		if esc := payload[at:min(at+6, int64(len(payload)))]; len(esc) == 6 && bytes.HasPrefix(esc, []byte(`\u`)) {
			return invalidPayload("unpaired surrogate escape %s%s at byte %d", esc, where, at)
		}
	}
	if errors.Is(se.Err, io.ErrUnexpectedEOF) {
		return invalidPayload("unexpected end of JSON input")
	}
	return invalidPayload("%v%s at byte %d", se.Err, where, at)
}

// quoteName quotes a key or JSON pointer for an error message, cut to maxQuotedName bytes.
func quoteName(s string) string {
	const maxQuotedName = 64
	if len(s) <= maxQuotedName {
		return strconv.Quote(s)
	}
	cut := maxQuotedName
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// kindName names a JSON kind as the error messages do.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "nothing"
}

// decoder is a pooled jsontext decoder reading a payload in place.
type decoder struct {
	buf bytes.Buffer
	dec jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// decodeOptions are jsontext's defaults, spelled out because Decode depends on them.
var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false)}

func getDecoder(payload []byte) *decoder {
	d := decoders.Get().(*decoder)
	d.buf = *bytes.NewBuffer(payload)
	d.dec.Reset(&d.buf, decodeOptions...)
	return d
}

func putDecoder(d *decoder) {
	d.buf = bytes.Buffer{}
	d.dec.Reset(&d.buf) // drop the payload
	decoders.Put(d)
}
