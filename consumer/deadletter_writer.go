package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/IBM/sarama"
)

// fallbackMessageLimit is the dead-letter topic's limit assumed when neither the topic's
// max.message.bytes nor the broker's message.max.bytes can be read: a little under Kafka's
// default of 1048588.
const fallbackMessageLimit = 1_000_000

// deadLetterWriter writes dead letters to the dead-letter topic and waits for the
// acknowledgements. No letter is refused forever for its size: each is cut to fit maxBytes
// before it is sent (deadLetterRecord), and one the broker still refuses as too large is
// sent again alone, then in its smallest form (smallestDeadLetterRecord).
type deadLetterWriter struct {
	p        sarama.SyncProducer
	topic    string
	maxBytes int // the largest record batch the topic takes (deadLetterLimit)
	// log, when set, gets a warning for every letter written cut.
	log *slog.Logger

	// mu keeps Writes from overlapping: the producer would put letters of concurrent Writes
	// into one record batch, which the topic may refuse for its size.
	mu sync.Mutex
}

func newDeadLetterWriter(p sarama.SyncProducer, topic string, maxBytes int) *deadLetterWriter {
	return &deadLetterWriter{p: p, topic: topic, maxBytes: maxBytes}
}

// Write writes one dead letter per message and reports which the broker acknowledged.
// When some were not, err is a transient ClassDeadLetterUnavailable error naming the topic
// and the broker's reason, and the caller writes those again later.
func (w *deadLetterWriter) Write(ctx context.Context, msgs []*Message, letters []DeadLetter) ([]bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	budget := w.maxBytes - recordBatchOverhead
	recs := make([]*sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		recs[i] = deadLetterRecord(w.topic, m, letters[i], budget)
		recs[i].Partition = m.Partition // the producer's partitioner decides (deadLetterPartitioner)
	}
	acked := make([]bool, len(msgs))
	failed := make([]error, len(msgs))
	alone := make([]bool, len(msgs))    // sent in a batch of its own
	smallest := make([]bool, len(msgs)) // recs[i] is the smallest form
	todo := make([]int, len(msgs))
	for i := range todo {
		todo[i] = i
	}
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			for _, i := range todo {
				failed[i] = err
			}
			break
		}
		var again []int
		for _, chunk := range w.chunks(todo, recs, alone, budget) {
			errs := w.send(chunk, recs)
			for k, i := range chunk {
				switch err := errs[k]; {
				case err == nil:
					acked[i] = true
				case !isSizeRefusal(err):
					failed[i] = err
				case !alone[i]: // perhaps refused for the others in its batch
					alone[i] = true
					again = append(again, i)
				case !smallest[i]:
					smallest[i] = true
					recs[i] = smallestDeadLetterRecord(w.topic, msgs[i], letters[i])
					recs[i].Partition = msgs[i].Partition
					again = append(again, i)
				default:
					failed[i] = fmt.Errorf("the smallest form of the dead letter (at most %d bytes) is too large for the topic; raise its max.message.bytes: %w",
						recs[i].ByteSize(2)+recordBatchOverhead, err)
				}
			}
		}
		todo = again
	}
	w.logCuts(msgs, recs, acked)
	return acked, w.failure(failed)
}

// logCuts warns about each acknowledged letter that was written cut, naming what was cut.
func (w *deadLetterWriter) logCuts(msgs []*Message, recs []*sarama.ProducerMessage, acked []bool) {
	if w.log == nil {
		return
	}
	for i, rec := range recs {
		if !acked[i] {
			continue
		}
		var cut []any
		for _, h := range rec.Headers {
			switch string(h.Key) { // compared without a copy: a copy per header was a tenth of the dead-letter path's allocations
			case HeaderValueCut, HeaderHeadersDropped, HeaderKeyCut:
				cut = append(cut, string(h.Key), string(h.Value))
			}
		}
		if len(cut) > 0 {
			w.log.Warn("Dead letter written cut: it would exceed the dead-letter topic's max.message.bytes",
				append([]any{"topic", w.topic, "limit", w.maxBytes, "partition", msgs[i].Partition, "offset", msgs[i].Offset}, cut...)...)
		}
	}
}

// chunks splits todo into batches whose records, by sarama's estimate, fit one record batch
// of maxBytes. A letter marked alone gets a batch of its own, and so does one that fits
// with no other; both are then marked alone.
func (w *deadLetterWriter) chunks(todo []int, recs []*sarama.ProducerMessage, alone []bool, budget int) [][]int {
	var out [][]int
	var cur []int
	size := 0
	for _, i := range todo {
		n := recs[i].ByteSize(2)
		if alone[i] {
			out = append(out, []int{i})
			continue
		}
		if len(cur) > 0 && size+n > budget {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	for _, c := range out {
		if len(c) == 1 {
			alone[c[0]] = true
		}
	}
	return out
}

// send sends the records of chunk and returns each one's error (nil: acknowledged).
func (w *deadLetterWriter) send(chunk []int, recs []*sarama.ProducerMessage) []error {
	pms := make([]*sarama.ProducerMessage, len(chunk))
	at := make(map[*sarama.ProducerMessage]int, len(chunk))
	for k, i := range chunk {
		pms[k] = recs[i]
		at[recs[i]] = k
	}
	errs := make([]error, len(chunk))
	err := w.p.SendMessages(pms)
	if err == nil {
		return errs
	}
	var perrs sarama.ProducerErrors
	if !errors.As(err, &perrs) {
		for k := range errs {
			errs[k] = err
		}
		return errs
	}
	for _, pe := range perrs {
		if k, ok := at[pe.Msg]; ok {
			errs[k] = pe.Err
		}
	}
	return errs
}

// failure is the transient error for the letters that failed, naming the topic and each
// distinct reason; nil when none failed.
func (w *deadLetterWriter) failure(failed []error) error {
	var first error
	var reasons []string
	n := 0
	for _, err := range failed {
		if err == nil {
			continue
		}
		n++
		if first == nil {
			first = err
		}
		if r := err.Error(); !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	if first == nil {
		return nil
	}
	err := fmt.Errorf("dead-letter topic %s did not acknowledge %d of %d dead letters: %w", w.topic, n, len(failed), first)
	if len(reasons) > 1 {
		err = fmt.Errorf("%w; also: %s", err, strings.Join(reasons[1:], "; "))
	}
	return Transient(ClassDeadLetterUnavailable, err)
}

// isSizeRefusal reports whether err refused a record for its size: the broker's
// MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE, or the producer's own Producer.MaxMessageBytes
// check (a ConfigurationError). INVALID_FETCH_SIZE (sarama's ErrInvalidMessageSize) is a
// fetch error and never answers a produce request.
func isSizeRefusal(err error) bool {
	var ce sarama.ConfigurationError
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrMessageSetSizeTooLarge) ||
		errors.As(err, &ce) && strings.Contains(string(ce), "MaxMessageBytes")
}

// deadLetterLimit returns the largest record batch the writer may send to topic: the
// smaller of the producer's Producer.MaxMessageBytes and the topic's max.message.bytes, or
// when that cannot be read, the broker's message.max.bytes, or when neither can,
// fallbackMessageLimit. A non-nil error says why a fallback was taken.
func deadLetterLimit(brokers []string, cfg *sarama.Config, topic string) (int, error) {
	producerMax := cfg.Producer.MaxMessageBytes
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		return min(producerMax, fallbackMessageLimit), fmt.Errorf("read max.message.bytes of %s: %w", topic, err)
	}
	defer func() { _ = admin.Close() }()
	limit, err := readConfigInt(admin, sarama.ConfigResource{Type: sarama.TopicResource, Name: topic}, "max.message.bytes")
	if err == nil {
		return min(producerMax, limit), nil
	}
	err = fmt.Errorf("read max.message.bytes of topic %s: %w", topic, err)
	brokerList, _, derr := admin.DescribeCluster()
	if derr == nil && len(brokerList) == 0 {
		derr = errors.New("no brokers")
	}
	if derr != nil {
		return min(producerMax, fallbackMessageLimit), fmt.Errorf("%w; describe the cluster: %w", err, derr)
	}
	id := strconv.Itoa(int(brokerList[0].ID()))
	limit, berr := readConfigInt(admin, sarama.ConfigResource{Type: sarama.BrokerResource, Name: id}, "message.max.bytes")
	if berr != nil {
		return min(producerMax, fallbackMessageLimit), fmt.Errorf("%w; read message.max.bytes of broker %s: %w", err, id, berr)
	}
	return min(producerMax, limit), err
}

// readConfigInt reads one positive integer config of a resource.
func readConfigInt(admin sarama.ClusterAdmin, r sarama.ConfigResource, name string) (int, error) {
	r.ConfigNames = []string{name}
	entries, err := admin.DescribeConfig(r)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if e.Name == name {
			n, err := strconv.Atoi(e.Value)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("%s is %q, not a positive integer", name, e.Value)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s is not among the configs the broker returned", name)
}
