package consumer

import (
	"fmt"
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

// deadLetterMessage builds the dead-letter record for msg: original key, value and
// headers, then the runtime's headers.
func deadLetterMessage(topic string, msg *Message, d DeadLetter) *sarama.ProducerMessage {
	headers := make([]Header, 0, len(msg.Headers)+9)
	for _, h := range msg.Headers {
		if !IsDeadLetterHeader(h.Key) { // a replayed record carries no stale reasons
			headers = append(headers, h)
		}
	}
	headers = append(headers, d.Headers()...)
	pm := &sarama.ProducerMessage{
		Topic:   topic,
		Headers: HeadersToSarama(headers),
	}
	if msg.Key != nil {
		pm.Key = sarama.ByteEncoder(msg.Key)
	}
	if msg.Value != nil {
		pm.Value = sarama.ByteEncoder(msg.Value)
	}
	return pm
}
