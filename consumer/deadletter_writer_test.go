package consumer_test

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
)

// TestADeadLetterWriteFailureIsRetriedAndNothingIsMarkedMeanwhile: while the broker
// refuses writes to the dead-letter topic, the invalid message is neither marked nor
// reported dead-lettered; the write is retried and lands once the broker accepts it.
func TestADeadLetterWriteFailureIsRetriedAndNothingIsMarkedMeanwhile(t *testing.T) {
	topic := consumertest.UniqueName("dlqdown")
	dlq := topic + ".dlq"
	cluster := consumertest.KfakeCluster(t, 1, topic, dlq)
	brokers := cluster.ListenAddrs()
	var refusing atomic.Bool
	var refused atomic.Int64
	refusing.Store(true)
	cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := r.(*kmsg.ProduceRequest)
		if !refusing.Load() || len(req.Topics) == 0 || req.Topics[0].Topic != dlq {
			return nil, nil, false
		}
		refused.Add(1)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

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
