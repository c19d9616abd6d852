package consumer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
)

// topicLimit is the dead-letter topic's max.message.bytes in these tests: small, so that
// records over it are quick to send.
const topicLimit = 65536

// brokerKinds are the brokers every writer test runs against: kfake always, Apache Kafka
// when KAFKASUB_TEST_KAFKA_BROKERS names one.
var brokerKinds = []struct {
	name  string
	start func(t *testing.T) []string
}{
	{"kfake", func(t *testing.T) []string { return consumertest.Kfake(t, 1) }},
	{"kafka", func(t *testing.T) []string { return consumertest.RealKafka(t, 1) }},
}

// eachBroker runs test in parallel against each kind of broker.
func eachBroker(t *testing.T, test func(t *testing.T, brokers []string)) {
	t.Parallel()
	for _, k := range brokerKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			test(t, k.start(t))
		})
	}
}

// createDLQ creates a dead-letter topic of one partition, with max.message.bytes set when
// maxBytes > 0.
func createDLQ(t *testing.T, brokers []string, maxBytes int) string {
	t.Helper()
	topic := consumertest.UniqueName("dlq")
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}
	if maxBytes > 0 {
		v := strconv.Itoa(maxBytes)
		detail.ConfigEntries = map[string]*string{"max.message.bytes": &v}
	}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	// A broker may answer for a topic a moment after the controller created it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		if err == nil {
			return topic
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s created but not described within 10s: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// producerConfig is the runtime's sarama configuration, with quicker retries.
func producerConfig(t *testing.T, brokers []string, dlq string) *sarama.Config {
	t.Helper()
	sc, err := consumer.SaramaConfig(consumertest.Config(brokers, "orders", dlq, consumer.DriverSQLite, ""))
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 50 * time.Millisecond
	return sc
}

type writer interface {
	Write(ctx context.Context, msgs []*consumer.Message, letters []consumer.DeadLetter) ([]bool, error)
}

// newWriter returns the runtime's writer for dlq, told the limit deadLetterLimit reads
// (or maxBytes when > 0), and that limit.
func newWriter(t *testing.T, brokers []string, sc *sarama.Config, dlq string, maxBytes int) (writer, int) {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if maxBytes == 0 {
		if maxBytes, err = consumer.DeadLetterLimit(brokers, sc, dlq); err != nil {
			t.Fatalf("read the limit of %s: %v", dlq, err)
		}
	}
	return consumer.NewDeadLetterWriter(p, dlq, maxBytes), maxBytes
}

// letter is message offset of topic orders with value, dead-lettered with errorMessage.
func letter(offset int64, value []byte, errorMessage string) (*consumer.Message, consumer.DeadLetter) {
	m := &consumer.Message{Topic: "orders", Offset: offset, Key: []byte("key-" + strconv.FormatInt(offset, 10)), Value: value,
		Headers: []consumer.Header{{Key: "trace", Value: []byte("t1")}}}
	return m, consumer.DeadLetter{OriginalTopic: "orders", OriginalOffset: offset, OriginalTimestamp: time.Unix(1700000000, 0),
		ConsumerGroup: "shop", Subscription: "test/orders", ErrorClass: consumer.ClassInvalidPayload, ErrorMessage: errorMessage, Attempts: 1}
}

// valueFor returns a value of the size that makes the letter's uncut record estimate
// (sarama's ByteSize, what the writer compares with its budget) exactly size.
func valueFor(size int, offset int64, errorMessage string) []byte {
	m, d := letter(offset, nil, errorMessage)
	pm := &sarama.ProducerMessage{Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder{},
		Headers: consumer.HeadersToSarama(append(m.Headers, d.Headers()...))}
	return bytes.Repeat([]byte{'v'}, size-pm.ByteSize(2))
}

// write writes the letters of values and returns what the dead-letter topic holds, by
// original offset; it fails the test unless every letter was acknowledged.
func write(t *testing.T, w writer, brokers []string, dlq string, values [][]byte, errorMessage string) map[int64]*sarama.ConsumerMessage {
	t.Helper()
	msgs := make([]*consumer.Message, len(values))
	letters := make([]consumer.DeadLetter, len(values))
	for i, v := range values {
		msgs[i], letters[i] = letter(int64(i), v, errorMessage)
	}
	acked, err := w.Write(context.Background(), msgs, letters)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	for i, ok := range acked {
		if !ok {
			t.Errorf("letter %d was not acknowledged", i)
		}
	}
	recs := consumertest.ReadTopic(t, brokers, dlq, len(values), 10*time.Second)
	byOffset := make(map[int64]*sarama.ConsumerMessage, len(recs))
	for _, r := range recs {
		d, _ := consumer.ParseDeadLetter(consumer.HeadersFromSarama(r.Headers))
		byOffset[d.OriginalOffset] = r
	}
	if len(byOffset) != len(values) {
		t.Fatalf("the dead-letter topic holds %d letters, want %d", len(byOffset), len(values))
	}
	return byOffset
}

func headerOf(r *sarama.ConsumerMessage, key string) string {
	for _, h := range r.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// checkWhole fails unless r holds value whole, its original header and no cut headers.
func checkWhole(t *testing.T, r *sarama.ConsumerMessage, value []byte) {
	t.Helper()
	if !bytes.Equal(r.Value, value) || headerOf(r, consumer.HeaderValueCut) != "" || headerOf(r, "trace") != "t1" {
		t.Errorf("letter %s: %d bytes of value, value-cut %q, want the %d bytes whole with the original header",
			r.Key, len(r.Value), headerOf(r, consumer.HeaderValueCut), len(value))
	}
}

// checkCut fails unless r holds a shorter prefix of value (of want bytes, when want >= 0),
// its original size and hash, and its key.
func checkCut(t *testing.T, r *sarama.ConsumerMessage, value []byte, want int) {
	t.Helper()
	sum := sha256.Sum256(value)
	if got := headerOf(r, consumer.HeaderValueCut); got != strconv.Itoa(len(value)) {
		t.Errorf("letter %s: value-cut %q, want %d", r.Key, got, len(value))
	}
	if got := headerOf(r, consumer.HeaderOriginalValueSHA256); got != hex.EncodeToString(sum[:]) {
		t.Errorf("letter %s: original-value-sha256 %q, want the original's", r.Key, got)
	}
	if len(r.Value) >= len(value) || !bytes.HasPrefix(value, r.Value) || want >= 0 && len(r.Value) != want {
		t.Errorf("letter %s: %d bytes of value, want a shorter prefix of the %d bytes", r.Key, len(r.Value), len(value))
	}
	if !strings.HasPrefix(string(r.Key), "key-") {
		t.Errorf("letter key %q, want the original key", r.Key)
	}
}

// checkFills fails unless r, cut, fills the writer's budget: its estimate is exactly
// limit - RecordBatchOverhead, so the cut kept all of the value that fits.
func checkFills(t *testing.T, r *sarama.ConsumerMessage, limit int) {
	t.Helper()
	pm := &sarama.ProducerMessage{Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value)}
	for _, h := range r.Headers {
		pm.Headers = append(pm.Headers, *h)
	}
	if got, want := pm.ByteSize(2), limit-consumer.RecordBatchOverhead; got != want {
		t.Errorf("letter %s: estimated size %d, want the cut to fill the budget of %d", r.Key, got, want)
	}
}

func TestADeadLetterJustUnderTheLimitKeepsItsValueAndHasItsErrorCut(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		dlq := createDLQ(t, brokers, topicLimit)
		w, limit := newWriter(t, brokers, producerConfig(t, brokers, dlq), dlq, 0)
		if limit != topicLimit {
			t.Fatalf("limit %d, want the topic's %d", limit, topicLimit)
		}
		huge := "invalid character 'x' looking for beginning of value: " + strings.Repeat("x", 600_000)
		value := valueFor(limit-consumer.RecordBatchOverhead, 0, huge)
		r := write(t, w, brokers, dlq, [][]byte{value}, huge)[0]
		checkWhole(t, r, value)
		if got := headerOf(r, consumer.HeaderErrorMessage); len(got) > consumer.MaxHeaderValueBytes || !strings.HasSuffix(got, "(cut, "+strconv.Itoa(len(huge))+" bytes)") {
			t.Errorf("error-message header of %d bytes ending %q, want it cut to %d", len(got), got[max(0, len(got)-30):], consumer.MaxHeaderValueBytes)
		}
	})
}

func TestADeadLetterOverTheTopicLimitIsWrittenWithItsValueCut(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		dlq := createDLQ(t, brokers, topicLimit)
		w, limit := newWriter(t, brokers, producerConfig(t, brokers, dlq), dlq, 0)
		value := bytes.Repeat([]byte("0123456789"), 20_000)
		r := write(t, w, brokers, dlq, [][]byte{value}, "bad")[0]
		checkCut(t, r, value, -1)
		checkFills(t, r, limit)
	})
}

func TestOneOversizedLetterInABatchOfFiftyIsTheOnlyOneCut(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		dlq := createDLQ(t, brokers, topicLimit)
		w, limit := newWriter(t, brokers, producerConfig(t, brokers, dlq), dlq, 0)
		values := make([][]byte, 50)
		for i := range values {
			values[i] = []byte(`{"product_code": "P` + strconv.Itoa(i) + `", "inventory_count": -1}`)
		}
		values[17] = bytes.Repeat([]byte("x"), 300_000)
		got := write(t, w, brokers, dlq, values, "bad")
		for i, v := range values {
			if i == 17 {
				checkCut(t, got[int64(i)], v, -1)
				checkFills(t, got[int64(i)], limit)
			} else {
				checkWhole(t, got[int64(i)], v)
			}
		}
	})
}

// TestRecordSizesAtEachLimit: at each limit that can bind (the topic's max.message.bytes,
// the producer's MaxMessageBytes, the broker's default message.max.bytes), a letter whose
// record estimate is one byte under or exactly at what the limit leaves is written whole,
// and one a byte over is written cut.
func TestRecordSizesAtEachLimit(t *testing.T) {
	limits := []struct {
		name        string
		topic       int // max.message.bytes of the topic, 0 for the broker's
		producerMax int // Producer.MaxMessageBytes, 0 for the runtime's
	}{
		{"topic max.message.bytes", topicLimit, 0},
		{"producer MaxMessageBytes", topicLimit, topicLimit / 2},
		{"broker defaults", 0, 0},
	}
	for _, l := range limits {
		t.Run(l.name, func(t *testing.T) {
			eachBroker(t, func(t *testing.T, brokers []string) {
				dlq := createDLQ(t, brokers, l.topic)
				sc := producerConfig(t, brokers, dlq)
				if l.producerMax > 0 {
					sc.Producer.MaxMessageBytes = l.producerMax
				}
				w, limit := newWriter(t, brokers, sc, dlq, 0)
				if l.producerMax > 0 && limit != l.producerMax || l.topic > 0 && l.producerMax == 0 && limit != l.topic {
					t.Fatalf("limit %d, want %d", limit, max(l.producerMax, l.topic))
				}
				budget := limit - consumer.RecordBatchOverhead
				values := [][]byte{valueFor(budget-1, 0, "bad"), valueFor(budget, 1, "bad"), valueFor(budget+1, 2, "bad")}
				got := write(t, w, brokers, dlq, values, "bad")
				checkWhole(t, got[0], values[0])
				checkWhole(t, got[1], values[1])
				checkCut(t, got[2], values[2], -1)
				checkFills(t, got[2], limit)
			})
		})
	}
}

// TestLettersTheTopicRefusesForTheirSizeAreSentAloneThenSmallest: a writer told a larger
// limit than the topic's (as when DescribeConfigs is denied) sends a batch the broker
// refuses as too large; each letter is sent again alone, and the one still refused goes
// in its smallest form.
func TestLettersTheTopicRefusesForTheirSizeAreSentAloneThenSmallest(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		dlq := createDLQ(t, brokers, topicLimit)
		w, _ := newWriter(t, brokers, producerConfig(t, brokers, dlq), dlq, 1<<20)
		values := make([][]byte, 30) // together over the topic's limit
		for i := range values {
			values[i] = bytes.Repeat([]byte{byte('a' + i%26)}, 3000)
		}
		values[5] = bytes.Repeat([]byte("z"), 200_000)
		got := write(t, w, brokers, dlq, values, "bad")
		for i, v := range values {
			if i == 5 {
				checkCut(t, got[int64(i)], v, 0)
				if headerOf(got[int64(i)], consumer.HeaderHeadersDropped) != "1" {
					t.Errorf("the smallest form has original-headers-dropped %q, want 1", headerOf(got[int64(i)], consumer.HeaderHeadersDropped))
				}
			} else {
				checkWhole(t, got[int64(i)], v)
			}
		}
	})
}

// refuseProduce makes the cluster answer produce requests to topic with code while on is
// true (always when on is nil), and returns how many it answered so.
func refuseProduce(cluster *kfake.Cluster, topic string, code int16, on *atomic.Bool) *atomic.Int64 {
	var n atomic.Int64
	cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := r.(*kmsg.ProduceRequest)
		if on != nil && !on.Load() || len(req.Topics) == 0 || req.Topics[0].Topic != topic {
			return nil, nil, false
		}
		n.Add(1)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return &n
}

func TestAWriteTheBrokerRefusesIsATransientErrorNamingTheTopicAndTheReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		code     int16
		reason   string
		requests int64 // produce requests the writer may make, at most
	}{
		{"Not enough replicas is retried by the caller.", kerr.NotEnoughReplicas.Code, "fewer in-sync replicas", 0},
		{"A letter too large even in its smallest form is not retried by the writer.", kerr.MessageTooLarge.Code, "raise its max.message.bytes", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dlq := consumertest.UniqueName("dlq")
			cluster := consumertest.KfakeCluster(t, 1, dlq)
			brokers := cluster.ListenAddrs()
			sc := producerConfig(t, brokers, dlq)
			sc.Producer.Retry.Max = 1
			sc.Producer.Retry.Backoff = 10 * time.Millisecond
			w, _ := newWriter(t, brokers, sc, dlq, 0)
			n := refuseProduce(cluster, dlq, c.code, nil)
			m, d := letter(0, []byte("this is no good"), "bad")
			acked, err := w.Write(context.Background(), []*consumer.Message{m}, []consumer.DeadLetter{d})
			if len(acked) != 1 || acked[0] {
				t.Errorf("acked %v, want [false]", acked)
			}
			if !consumer.IsTransient(err) || consumer.ClassOf(err) != consumer.ClassDeadLetterUnavailable {
				t.Fatalf("error %v (class %q), want a transient %s", err, consumer.ClassOf(err), consumer.ClassDeadLetterUnavailable)
			}
			if !strings.Contains(err.Error(), dlq) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %q, want it to name %s and %q", err, dlq, c.reason)
			}
			if c.requests > 0 && n.Load() > c.requests {
				t.Errorf("%d produce requests, want at most %d", n.Load(), c.requests)
			}
		})
	}
}

func TestDeadLetterLimitFallsBackToTheBrokerThenToADefault(t *testing.T) {
	t.Parallel()
	t.Run("A missing topic gives the broker's message.max.bytes.", func(t *testing.T) {
		t.Parallel()
		brokers := consumertest.Kfake(t, 1)
		sc := producerConfig(t, brokers, "none")
		sc.Producer.MaxMessageBytes = 2 << 20 // above the broker's
		sc.Metadata.AllowAutoTopicCreation = false
		limit, err := consumer.DeadLetterLimit(brokers, sc, "no_such_topic")
		if limit != 1048588 || err == nil || !strings.Contains(err.Error(), "no_such_topic") {
			t.Errorf("limit %d, error %v; want kfake's message.max.bytes 1048588 and an error naming the topic", limit, err)
		}
	})
	t.Run("Unreachable brokers give 1,000,000 bytes.", func(t *testing.T) {
		t.Parallel()
		sc := producerConfig(t, []string{"127.0.0.1:1"}, "none")
		sc.Metadata.Retry.Max = 0
		limit, err := consumer.DeadLetterLimit([]string{"127.0.0.1:1"}, sc, "dlq")
		if limit != 1_000_000 || err == nil {
			t.Errorf("limit %d, error %v; want 1000000 and an error", limit, err)
		}
	})
}

// TestADeadLetterWriteFailureIsRetriedAndNothingIsMarkedMeanwhile: while the broker
// refuses writes to the dead-letter topic, the invalid message is neither marked nor
// reported dead-lettered; the write is retried and lands once the broker accepts it.
func TestADeadLetterWriteFailureIsRetriedAndNothingIsMarkedMeanwhile(t *testing.T) {
	topic := consumertest.UniqueName("dlqdown")
	dlq := topic + ".dlq"
	cluster := consumertest.KfakeCluster(t, 1, topic, dlq)
	brokers := cluster.ListenAddrs()
	var refusing atomic.Bool
	refusing.Store(true)
	refused := refuseProduce(cluster, dlq, kerr.NotEnoughReplicas.Code, &refusing)

	dsn, _ := seededSQLite(t)
	cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, dsn)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var dlqRetries atomic.Int64
	r := startConsumer(t, cfg, consumer.WithLogger(quiet))
	r.c.Monitor().Subscribe(func(e consumer.Event) {
		if e.Class == consumer.ClassDeadLetterUnavailable {
			dlqRetries.Add(1)
		}
	}, consumer.EventRetrying)
	_, off, err := consumertest.Producer(t, brokers).SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("this is no good")})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for dlqRetries.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no dead-letter retries within 60s (%d produce requests refused)", refused.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.out.mu.Lock()
	_, settled := r.out.byKey["0/0"]
	r.out.mu.Unlock()
	if settled {
		t.Fatal("the message was settled while the dead-letter topic refused writes")
	}
	if r.c.Ready() {
		t.Error("Ready() is true while a dead-letter write is being retried")
	}
	refusing.Store(false)
	if ev := r.out.outcome(t, 0, off); ev.Type != consumer.EventDeadLettered || ev.Class != consumer.ClassInvalidPayload {
		t.Fatalf("outcome %s %s, want dead-lettered InvalidPayload", ev.Type, ev.Class)
	}
	for deadline := time.Now().Add(30 * time.Second); !r.c.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not ready again within 30s after the dead-letter write succeeded")
		}
	}
	recs := consumertest.ReadTopic(t, brokers, dlq, 1, 30*time.Second)
	if len(recs) < 1 || string(recs[0].Value) != "this is no good" {
		t.Fatalf("dead-letter topic holds %d records, want the message", len(recs))
	}
}

// TestAnOversizedDeadLetterDoesNotBlockItsPartition: a 200 KiB message whose error repeats
// the whole value (the dead letter would be twice the message) goes to a dead-letter topic
// of 64 KiB: it is written cut, and the message after it is processed.
func TestAnOversizedDeadLetterDoesNotBlockItsPartition(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		topic := consumertest.UniqueName("big")
		consumertest.CreateTopics(t, brokers, 1, topic)
		dlq := createDLQ(t, brokers, topicLimit)
		big := "x" + strings.Repeat("y", 200<<10)
		consumertest.Produce(t, consumertest.Producer(t, brokers), topic, "ok", big, "ok too")
		h := consumer.HandlerFunc(func(ctx context.Context, _ *gorm.DB, m *consumer.Message) error {
			if strings.HasPrefix(string(m.Value), "x") {
				return consumer.Permanentf(consumer.ClassValidationFailed, "value %s is not acceptable", m.Value)
			}
			return nil
		})
		dsn, _ := seededSQLite(t)
		cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, dsn)
		r := startConsumer(t, cfg, consumer.WithHandler(h))
		for off, want := range []consumer.EventType{consumer.EventProcessed, consumer.EventDeadLettered, consumer.EventProcessed} {
			if ev := r.out.outcome(t, 0, int64(off)); ev.Type != want {
				t.Fatalf("offset %d: %s (%v), want %s", off, ev.Type, ev.Err, want)
			}
		}
		recs := consumertest.ReadTopic(t, brokers, dlq, 1, 10*time.Second)
		if len(recs) != 1 {
			t.Fatalf("dead-letter topic has %d records, want 1", len(recs))
		}
		if got := headerOf(recs[0], consumer.HeaderValueCut); got != strconv.Itoa(len(big)) {
			t.Errorf("%s = %q, want the original size %d", consumer.HeaderValueCut, got, len(big))
		}
		if msg := headerOf(recs[0], consumer.HeaderErrorMessage); len(msg) > 2<<10 || !strings.Contains(msg, "cut") {
			t.Errorf("error-message header of %d bytes, want it capped and marked cut", len(msg))
		}
	})
}

// TestADeadLetterIsWholeWhereTheTopicHasRoomForIt: topics that take records of 4 MiB (more
// than the producer's default limit of 1,000,000 bytes); a 1.5 MB message is dead-lettered
// whole, value and all, because the dead-letter producer follows the topic's limit.
func TestADeadLetterIsWholeWhereTheTopicHasRoomForIt(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		const roomy = 4 << 20
		topic := createDLQ(t, brokers, roomy)
		dlq := createDLQ(t, brokers, roomy)
		big := "x" + strings.Repeat("y", 1_500_000)
		sc := sarama.NewConfig()
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Return.Successes = true
		sc.Producer.MaxMessageBytes = roomy
		p, err := sarama.NewSyncProducer(brokers, sc)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, v := range []string{big, "ok"} {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatalf("produce %d bytes: %v", len(v), err)
			}
		}
		h := consumer.HandlerFunc(func(ctx context.Context, _ *gorm.DB, m *consumer.Message) error {
			if strings.HasPrefix(string(m.Value), "x") {
				return consumer.Permanentf(consumer.ClassValidationFailed, "a value of %d bytes is not acceptable", len(m.Value))
			}
			return nil
		})
		dsn, _ := seededSQLite(t)
		r := startConsumer(t, consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, dsn), consumer.WithHandler(h))
		for off, want := range []consumer.EventType{consumer.EventDeadLettered, consumer.EventProcessed} {
			if ev := r.out.outcome(t, 0, int64(off)); ev.Type != want {
				t.Fatalf("offset %d: %s (%v), want %s", off, ev.Type, ev.Err, want)
			}
		}
		recs := consumertest.ReadTopic(t, brokers, dlq, 1, 10*time.Second)
		if len(recs) != 1 {
			t.Fatalf("dead-letter topic has %d records, want 1", len(recs))
		}
		if cut := headerOf(recs[0], consumer.HeaderValueCut); cut != "" || string(recs[0].Value) != big {
			t.Fatalf("dead letter of %d value bytes (%s %q), want the whole %d", len(recs[0].Value), consumer.HeaderValueCut, cut, len(big))
		}
	})
}
