package cli

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer"
)

// HeaderReplayedFrom is the header `kafkasub dlq replay` puts on every record it
// re-publishes: "<dead-letter topic>/<partition>/<offset>" of the dead-letter record it
// came from. It is not under consumer.HeaderPrefix on purpose: if the replayed record fails
// again, the runtime keeps it among the original headers, so the new dead letter still
// links to the old one. A second replay replaces it.
const HeaderReplayedFrom = "kafkasub-replayed-from"

// deadLetterRecord is one record of a dead-letter topic, as `dlq list` prints it.
type deadLetterRecord struct {
	// Coordinates in the dead-letter topic.
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	// Original says where the message was consumed from.
	Original      originalCoordinates `json:"original"`
	ConsumerGroup string              `json:"consumerGroup,omitempty"`
	Subscription  string              `json:"subscription,omitempty"`
	ErrorClass    string              `json:"errorClass"`
	ErrorMessage  string              `json:"errorMessage"`
	Attempts      int                 `json:"attempts"`
	// ReplayedFrom is set when the message had been replayed from an earlier dead letter.
	ReplayedFrom string `json:"replayedFrom,omitempty"`
	// Key and Value are text when they are UTF-8, base64 otherwise (KeyEncoding,
	// ValueEncoding "base64"). A record without a key has no key field.
	Key           *string      `json:"key,omitempty"`
	KeyEncoding   string       `json:"keyEncoding,omitempty"`
	Value         string       `json:"value"`
	ValueEncoding string       `json:"valueEncoding,omitempty"`
	Headers       []jsonHeader `json:"headers,omitempty"`

	key, value []byte
	original   []consumer.Header // the message's own headers, without the runtime's
}

type originalCoordinates struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
}

type jsonHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func newDeadLetterRecord(m *sarama.ConsumerMessage) deadLetterRecord {
	d, original := consumer.ParseDeadLetter(consumer.HeadersFromSarama(m.Headers))
	r := deadLetterRecord{
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp,
		Original: originalCoordinates{Topic: d.OriginalTopic, Partition: d.OriginalPartition,
			Offset: d.OriginalOffset, Timestamp: d.OriginalTimestamp},
		ConsumerGroup: d.ConsumerGroup,
		Subscription:  d.Subscription,
		ErrorClass:    string(d.ErrorClass),
		ErrorMessage:  d.ErrorMessage,
		Attempts:      d.Attempts,
		key:           m.Key,
		value:         m.Value,
		original:      original,
	}
	if m.Key != nil {
		k, enc := textOrBase64(m.Key)
		r.Key, r.KeyEncoding = &k, enc
	}
	r.Value, r.ValueEncoding = textOrBase64(m.Value)
	for _, h := range original {
		if h.Key == HeaderReplayedFrom {
			r.ReplayedFrom = string(h.Value)
		}
		r.Headers = append(r.Headers, jsonHeader{Key: h.Key, Value: string(h.Value)})
	}
	return r
}

func textOrBase64(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// selection chooses dead-letter records by partition, offset range and error class; the
// zero value chooses every record.
type selection struct {
	partitions []int32
	offsets    string
	classes    []string

	from, to int64 // parsed offsets, inclusive; to only when hasTo
	hasTo    bool
}

// parse checks the offsets flag: N, A-B, A- or -B (inclusive).
func (s *selection) parse() error {
	s.from, s.to, s.hasTo = 0, 0, false
	if s.offsets == "" {
		return nil
	}
	bad := fmt.Errorf("--offsets: %q must be N, A-B, A- or -B (dead-letter topic offsets, inclusive)", s.offsets)
	a, b, isRange := strings.Cut(s.offsets, "-")
	parse := func(v string, dflt int64) (int64, error) {
		if v == "" {
			return dflt, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, bad
		}
		return n, nil
	}
	var err error
	if s.from, err = parse(a, 0); err != nil {
		return err
	}
	if !isRange {
		if a == "" {
			return bad
		}
		s.to, s.hasTo = s.from, true
		return nil
	}
	if a == "" && b == "" {
		return bad
	}
	if b != "" {
		if s.to, err = parse(b, 0); err != nil {
			return err
		}
		s.hasTo = true
	}
	if s.hasTo && s.to < s.from {
		return fmt.Errorf("--offsets: %q ends before it starts", s.offsets)
	}
	return nil
}

func (s *selection) empty() bool {
	return len(s.partitions) == 0 && s.offsets == "" && len(s.classes) == 0
}

func (s *selection) matches(r deadLetterRecord) bool {
	if len(s.partitions) > 0 && !slices.Contains(s.partitions, r.Partition) {
		return false
	}
	if r.Offset < s.from || (s.hasTo && r.Offset > s.to) {
		return false
	}
	if len(s.classes) > 0 && !slices.ContainsFunc(s.classes, func(c string) bool { return strings.EqualFold(c, r.ErrorClass) }) {
		return false
	}
	return true
}

// readTopic reads every record of topic that is there when it starts (from the oldest
// offset of each partition up to its high-water mark), in partition then offset order,
// and returns those sel matches. It does not commit anything and joins no group.
func readTopic(client sarama.Client, topic string, sel *selection, idle time.Duration) ([]deadLetterRecord, error) {
	parts, err := topicPartitions(client, topic)
	if err != nil {
		return nil, err
	}
	for _, p := range sel.partitions {
		if !slices.Contains(parts, p) {
			return nil, fmt.Errorf("--partition: topic %q has no partition %d (it has %d)", topic, p, len(parts))
		}
	}
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []deadLetterRecord
	for _, p := range parts {
		if len(sel.partitions) > 0 && !slices.Contains(sel.partitions, p) {
			continue
		}
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("topic %s partition %d: oldest offset: %w", topic, p, err)
		}
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("topic %s partition %d: newest offset: %w", topic, p, err)
		}
		start := max(oldest, sel.from)
		if sel.hasTo {
			end = min(end, sel.to+1)
		}
		if start >= end {
			continue
		}
		recs, err := readPartition(c, topic, p, start, end, idle)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if sel.matches(r) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func readPartition(c sarama.Consumer, topic string, p int32, start, end int64, idle time.Duration) ([]deadLetterRecord, error) {
	pc, err := c.ConsumePartition(topic, p, start)
	if err != nil {
		return nil, fmt.Errorf("read topic %s partition %d from offset %d: %w", topic, p, start, err)
	}
	defer pc.AsyncClose()
	var out []deadLetterRecord
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-pc.Messages():
			if !ok {
				return out, nil
			}
			if m.Offset >= end {
				return out, nil
			}
			out = append(out, newDeadLetterRecord(m))
			if m.Offset+1 >= end {
				return out, nil
			}
			timer.Reset(idle)
		case err := <-pc.Errors():
			if err != nil {
				return nil, fmt.Errorf("read topic %s partition %d: %w", topic, p, err)
			}
		case <-timer.C:
			next := start
			if len(out) > 0 {
				next = out[len(out)-1].Offset + 1
			}
			return nil, fmt.Errorf("read topic %s partition %d: no record at offset %d or after within %s (the partition ends at %d)", topic, p, next, idle, end)
		}
	}
}
