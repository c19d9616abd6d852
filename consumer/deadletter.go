package consumer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
)

// Headers the runtime adds to every dead-lettered record, beside the original key, value
// and headers. Values are UTF-8 text: numbers in decimal, the timestamp in RFC 3339 with
// nanoseconds.
const (
	HeaderPrefix            = "kafkasub."
	HeaderOriginalTopic     = HeaderPrefix + "original-topic"
	HeaderOriginalPartition = HeaderPrefix + "original-partition"
	HeaderOriginalOffset    = HeaderPrefix + "original-offset"
	HeaderOriginalTimestamp = HeaderPrefix + "original-timestamp"
	HeaderConsumerGroup     = HeaderPrefix + "consumer-group"
	HeaderSubscription      = HeaderPrefix + "subscription"
	HeaderErrorClass        = HeaderPrefix + "error-class"
	HeaderErrorMessage      = HeaderPrefix + "error-message"
	HeaderAttempts          = HeaderPrefix + "attempts"
)

// MaxHeaderValueBytes caps each header value above: a longer one (in practice an error
// message that repeats the payload) is cut on a UTF-8 boundary and ends in
// "… (cut, N bytes)", N being its full length, so the reasons cannot make a dead letter
// larger than the topic takes.
const MaxHeaderValueBytes = 1024

// Headers the runtime adds to a dead letter it cut to fit the dead-letter topic's
// max.message.bytes. A cut letter keeps a prefix of the value (and of the key, when the key
// alone is too large); the hashes let an operator match it with the original record.
const (
	HeaderValueCut            = HeaderPrefix + "value-cut"                // the original value's size in bytes
	HeaderOriginalValueSHA256 = HeaderPrefix + "original-value-sha256"    // hex SHA-256 of the original value
	HeaderHeadersDropped      = HeaderPrefix + "original-headers-dropped" // how many original headers were left off
	HeaderKeyCut              = HeaderPrefix + "key-cut"                  // the original key's size in bytes
	HeaderOriginalKeySHA256   = HeaderPrefix + "original-key-sha256"      // hex SHA-256 of the original key
)

// IsDeadLetterHeader reports whether key is one of the headers the runtime adds (a replay
// drops them and keeps the original headers).
func IsDeadLetterHeader(key string) bool { return strings.HasPrefix(key, HeaderPrefix) }

// DeadLetter describes why and from where a record reached the dead-letter topic.
type DeadLetter struct {
	OriginalTopic     string
	OriginalPartition int32
	OriginalOffset    int64
	OriginalTimestamp time.Time
	ConsumerGroup     string
	Subscription      string
	ErrorClass        ErrorClass
	ErrorMessage      string
	Attempts          int
}

// Headers returns d as record headers, each value capped at MaxHeaderValueBytes.
func (d DeadLetter) Headers() []Header {
	return []Header{
		{HeaderOriginalTopic, capHeaderValue(d.OriginalTopic)},
		{HeaderOriginalPartition, []byte(strconv.FormatInt(int64(d.OriginalPartition), 10))},
		{HeaderOriginalOffset, []byte(strconv.FormatInt(d.OriginalOffset, 10))},
		{HeaderOriginalTimestamp, []byte(d.OriginalTimestamp.UTC().Format(time.RFC3339Nano))},
		{HeaderConsumerGroup, capHeaderValue(d.ConsumerGroup)},
		{HeaderSubscription, capHeaderValue(d.Subscription)},
		{HeaderErrorClass, capHeaderValue(string(d.ErrorClass))},
		{HeaderErrorMessage, capHeaderValue(d.ErrorMessage)},
		{HeaderAttempts, []byte(strconv.Itoa(d.Attempts))},
	}
}

// capHeaderValue returns s, or when it is longer than MaxHeaderValueBytes, its start cut
// on a UTF-8 boundary and marked with its full length.
func capHeaderValue(s string) []byte {
	if len(s) <= MaxHeaderValueBytes {
		return []byte(s)
	}
	mark := fmt.Sprintf("… (cut, %d bytes)", len(s))
	n := MaxHeaderValueBytes - len(mark)
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return []byte(s[:n] + mark)
}

// ParseDeadLetter reads the runtime's headers from a dead-lettered record's headers and
// returns them with the original headers (those the runtime did not add), in order.
// Missing or malformed runtime headers leave their fields zero.
func ParseDeadLetter(headers []Header) (DeadLetter, []Header) {
	var d DeadLetter
	var original []Header
	for _, h := range headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderOriginalTopic:
			d.OriginalTopic = v
		case HeaderOriginalPartition:
			p, _ := strconv.ParseInt(v, 10, 32)
			d.OriginalPartition = int32(p)
		case HeaderOriginalOffset:
			d.OriginalOffset, _ = strconv.ParseInt(v, 10, 64)
		case HeaderOriginalTimestamp:
			d.OriginalTimestamp, _ = time.Parse(time.RFC3339Nano, v)
		case HeaderConsumerGroup:
			d.ConsumerGroup = v
		case HeaderSubscription:
			d.Subscription = v
		case HeaderErrorClass:
			d.ErrorClass = ErrorClass(v)
		case HeaderErrorMessage:
			d.ErrorMessage = v
		case HeaderAttempts:
			d.Attempts, _ = strconv.Atoi(v)
		default:
			if !IsDeadLetterHeader(h.Key) {
				original = append(original, h)
			}
		}
	}
	return d, original
}

// HeadersFromSarama converts sarama consumer record headers.
func HeadersFromSarama(hs []*sarama.RecordHeader) []Header {
	out := make([]Header, 0, len(hs))
	for _, h := range hs {
		if h == nil {
			continue
		}
		out = append(out, Header{Key: string(h.Key), Value: h.Value})
	}
	return out
}

// HeadersToSarama converts headers for a sarama ProducerMessage.
func HeadersToSarama(hs []Header) []sarama.RecordHeader {
	out := make([]sarama.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
	}
	return out
}

// recordBatchOverhead is the size of a record batch's header (format v2): a broker
// compares max.message.bytes with the whole batch, header included.
const recordBatchOverhead = 61

// deadLetterRecord builds the dead-letter record for msg: original key, value and headers,
// then the runtime's headers. When sarama's size estimate of the record (ByteSize, an upper
// bound of its encoded size) exceeds budget, it is cut until it fits, in this order: the
// value to a prefix (HeaderValueCut, HeaderOriginalValueSHA256); then the original headers
// left off (HeaderHeadersDropped); then the key to its first MaxHeaderValueBytes
// (HeaderKeyCut, HeaderOriginalKeySHA256). Only runtime headers larger than budget leave it
// too large.
func deadLetterRecord(topic string, msg *Message, d DeadLetter, budget int) *sarama.ProducerMessage {
	original := originalHeaders(msg.Headers)
	reasons := d.Headers()
	if pm, ok := fitRecord(topic, msg.Key, msg.Value, slices.Concat(original, reasons), budget); ok {
		return pm
	}
	if len(original) > 0 {
		reasons = append(reasons, Header{HeaderHeadersDropped, []byte(strconv.Itoa(len(original)))})
		if pm, ok := fitRecord(topic, msg.Key, msg.Value, reasons, budget); ok {
			return pm
		}
	}
	key := msg.Key
	if len(key) > MaxHeaderValueBytes {
		reasons = append(reasons, keyCutHeaders(key)...)
		key = cut(key, MaxHeaderValueBytes)
		if pm, ok := fitRecord(topic, key, msg.Value, reasons, budget); ok {
			return pm
		}
	}
	return newRecord(topic, key, cut(msg.Value, 0), append(reasons, valueCutHeaders(msg.Value)...))
}

// smallestDeadLetterRecord is the last form of msg's dead letter, for a topic that refused
// the one deadLetterRecord built (its limit is lower than the writer was told): the key
// when it is at most MaxHeaderValueBytes long, no value, no original headers.
func smallestDeadLetterRecord(topic string, msg *Message, d DeadLetter) *sarama.ProducerMessage {
	reasons := d.Headers()
	if n := len(originalHeaders(msg.Headers)); n > 0 {
		reasons = append(reasons, Header{HeaderHeadersDropped, []byte(strconv.Itoa(n))})
	}
	key := msg.Key
	if len(key) > MaxHeaderValueBytes {
		reasons = append(reasons, keyCutHeaders(key)...)
		key = cut(key, 0)
	}
	return newRecord(topic, key, cut(msg.Value, 0), append(reasons, valueCutHeaders(msg.Value)...))
}

// fitRecord returns the record with the whole value when it fits budget, else with as much
// of the value as fits and the headers saying it was cut; false when key and headers alone
// do not fit.
func fitRecord(topic string, key, value []byte, headers []Header, budget int) (*sarama.ProducerMessage, bool) {
	if pm := newRecord(topic, key, value, headers); pm.ByteSize(2) <= budget {
		return pm, true
	}
	headers = slices.Concat(headers, valueCutHeaders(value))
	room := budget - newRecord(topic, key, cut(value, 0), headers).ByteSize(2)
	if room < 0 {
		return nil, false
	}
	return newRecord(topic, key, cut(value, room), headers), true
}

// originalHeaders returns hs without runtime headers: a replayed record carries no stale
// reasons.
func originalHeaders(hs []Header) []Header {
	out := make([]Header, 0, len(hs))
	for _, h := range hs {
		if !IsDeadLetterHeader(h.Key) {
			out = append(out, h)
		}
	}
	return out
}

// valueCutHeaders are the headers of a record whose value was cut; none for an empty
// value, which nothing can cut.
func valueCutHeaders(value []byte) []Header {
	if len(value) == 0 {
		return nil
	}
	sum := sha256.Sum256(value)
	return []Header{
		{HeaderValueCut, []byte(strconv.Itoa(len(value)))},
		{HeaderOriginalValueSHA256, []byte(hex.EncodeToString(sum[:]))},
	}
}

func keyCutHeaders(key []byte) []Header {
	sum := sha256.Sum256(key)
	return []Header{
		{HeaderKeyCut, []byte(strconv.Itoa(len(key)))},
		{HeaderOriginalKeySHA256, []byte(hex.EncodeToString(sum[:]))},
	}
}

// cut returns the first n bytes of b (all of b when it is shorter); nil stays nil, so a
// tombstone stays a tombstone and a cut value never becomes one.
func cut(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[:n:n]
}

func newRecord(topic string, key, value []byte, headers []Header) *sarama.ProducerMessage {
	pm := &sarama.ProducerMessage{Topic: topic, Headers: HeadersToSarama(headers)}
	if key != nil {
		pm.Key = sarama.ByteEncoder(key)
	}
	if value != nil {
		pm.Value = sarama.ByteEncoder(value)
	}
	return pm
}
