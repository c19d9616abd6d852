package consumer_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/dbfault"
)

// getStatus reads the consumer's status endpoint.
func getStatus(t *testing.T, c *consumer.Consumer) (consumer.Status, string) {
	t.Helper()
	resp, err := http.Get("http://" + c.HealthAddr() + consumer.StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s, Content-Type %q", consumer.StatusPath, resp.Status, resp.Header.Get("Content-Type"))
	}
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var s consumer.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s, string(raw)
}

// TestStatusEndpointAfterAValidAndAnInvalidMessage: /status on the health port reports the
// partition caught up, one message applied, one dead-lettered and the error that sent it
// there.
func TestStatusEndpointAfterAValidAndAnInvalidMessage(t *testing.T) {
	topic, r, last := validThenInvalid(t, "status")
	cfg := r.c.Config()

	var s consumer.Status
	var raw string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s, raw = getStatus(t, r.c)
		if s.Messages.DeadLettered == 1 && s.LastError != nil && len(s.Partitions) == 1 && s.Lag == 0 &&
			s.Partitions[0].Committed != nil && *s.Partitions[0].Committed == last+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after 30s: %s", raw)
		}
	}
	t.Logf("GET %s: %s", consumer.StatusPath, raw)
	p0 := s.Partitions[0]
	switch {
	case s.Version != consumer.StatusVersion || s.Subscription != cfg.Subscription || s.Group != cfg.Kafka.ConsumerGroup || s.Topic != topic:
		t.Errorf("identity: %s", raw)
	case !s.Joined || !s.DatabaseUp || s.Retrying != 0:
		t.Errorf("want joined, database up, nothing retrying: %s", raw)
	case s.Messages != consumer.MessageCounts{Applied: 1, DeadLettered: 1}:
		t.Errorf("messages %+v, want 1 applied and 1 dead-lettered", s.Messages)
	case p0.Partition != 0 || p0.HighWaterMark != last+1 || p0.Lag == nil || *p0.Lag != 0 || p0.Stored == nil || *p0.Stored != last:
		t.Errorf("partition 0: %s; want high-water mark %d, stored %d, lag 0", raw, last+1, last)
	case s.LastError.Class != consumer.ClassUnexpectedAttributes || !s.LastError.Permanent || s.LastError.Offset != last ||
		s.LastError.Topic != topic || s.LastError.Message == "" || s.LastError.Time.IsZero():
		t.Errorf("lastError %+v, want the UnexpectedAttributes error of offset %d", *s.LastError, last)
	case s.LastDeadLetterAt == nil:
		t.Errorf("lastDeadLetterAt is not set: %s", raw)
	case s.DeadLetter != consumer.DeadLetterStatus{Topic: topic + ".dlq", Partitions: 1, Affinity: true}:
		t.Errorf("deadLetter %+v, want topic %s of 1 partition, with affinity", s.DeadLetter, topic+".dlq")
	}
}

// While the database is down the partition is paused for retries and fetches nothing; its
// lag still counts what arrives meanwhile (the high-water mark is asked of the broker), and
// falls to 0 once the database is back.
func TestStatusLagGrowsWhileThePartitionWaitsForTheDatabase(t *testing.T) {
	topic := consumertest.UniqueName("statuslag")
	brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
	dsn, product := seededSQLite(t)
	gate := dbfault.NewGate()
	r := startConsumer(t, consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn),
		consumer.WithDatabaseOptions(consumer.WithConnector(gate.Wrap)))
	p := consumertest.Producer(t, brokers)
	send := func(n int) {
		for i := range n {
			v := fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, product.Code, 40+i)
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitStatus := func(what string, ok func(consumer.Status) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			s, raw := getStatus(t, r.c)
			if ok(s) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status after 30s: %s", what, raw)
			}
		}
	}
	gate.SetDown(true)
	send(1)
	waitStatus("retrying", func(s consumer.Status) bool { return s.Retrying == 1 })
	send(9)
	waitStatus("lag 10 while retrying", func(s consumer.Status) bool { return s.Retrying == 1 && s.Lag == 10 })
	gate.SetDown(false)
	waitStatus("lag 0 after the database returned", func(s consumer.Status) bool { return s.Retrying == 0 && s.Lag == 0 })
}
