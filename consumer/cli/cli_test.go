package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/embedded"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

func TestSelectionParsesOffsetRanges(t *testing.T) {
	tests := []struct {
		name, offsets string
		from, to      int64
		hasTo         bool
		err           string
	}{
		{name: "No offsets choose everything.", offsets: ""},
		{name: "One offset chooses just it.", offsets: "7", from: 7, to: 7, hasTo: true},
		{name: "A range is inclusive.", offsets: "3-9", from: 3, to: 9, hasTo: true},
		{name: "An open end runs to the end of the partition.", offsets: "4-", from: 4},
		{name: "An open start runs from the beginning.", offsets: "-5", to: 5, hasTo: true},
		{name: "A range that ends before it starts is refused.", offsets: "9-3", err: `"9-3" ends before it starts`},
		{name: "A dash alone is refused.", offsets: "-", err: "must be N, A-B, A- or -B"},
		{name: "Words are refused.", offsets: "first", err: "must be N, A-B, A- or -B"},
		{name: "Negative numbers are refused.", offsets: "--3", err: "must be N, A-B, A- or -B"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := selection{offsets: tc.offsets}
			err := s.parse()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "--offsets: ") {
					t.Fatalf("got %v, want an --offsets error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.from != tc.from || s.to != tc.to || s.hasTo != tc.hasTo {
				t.Errorf("got from %d to %d (hasTo %v), want %d %d (%v)", s.from, s.to, s.hasTo, tc.from, tc.to, tc.hasTo)
			}
		})
	}
}

func TestSelectionMatchesPartitionOffsetAndClass(t *testing.T) {
	rec := deadLetterRecord{Partition: 1, Offset: 5, ErrorClass: "ValidationFailed"}
	tests := []struct {
		name string
		sel  selection
		want bool
	}{
		{"The empty selection matches.", selection{}, true},
		{"Its partition matches.", selection{partitions: []int32{0, 1}}, true},
		{"Another partition does not.", selection{partitions: []int32{0}}, false},
		{"A range holding its offset matches.", selection{offsets: "5-6"}, true},
		{"A range past its offset does not.", selection{offsets: "6-"}, false},
		{"Its class matches, in any case.", selection{classes: []string{"validationfailed"}}, true},
		{"Another class does not.", selection{classes: []string{"InvalidPayload"}}, false},
		{"All criteria must hold.", selection{partitions: []int32{1}, offsets: "5", classes: []string{"InvalidPayload"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.sel.parse(); err != nil {
				t.Fatal(err)
			}
			if got := tc.sel.matches(rec); got != tc.want {
				t.Errorf("matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExamplesAreTheMissionsPayloads(t *testing.T) {
	code := inventory.SeedProducts[0].Code
	tests := []struct {
		name, value, code string
	}{
		{ExampleValid, `{"product_code": "` + code + `", "inventory_count": 25}`, code},
		{ExampleNegativeCount, `{"product_code": "` + code + `", "inventory_count": -1}`, code},
		{ExampleUnknownCode, `{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`, UnknownProductCode},
		{ExampleNotJSON, `this is no good`, ""},
		{ExampleUnexpectedAttributes, `{"greeting": "hello"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := buildExample(tc.name, "", DefaultExampleCount)
			if err != nil {
				t.Fatal(err)
			}
			if ex.Value != tc.value || ex.Code != tc.code {
				t.Errorf("got %q (code %q), want %q (code %q)", ex.Value, ex.Code, tc.value, tc.code)
			}
		})
	}
	if _, err := buildExample("valid-ish", "", 1); err == nil || !strings.Contains(err.Error(), "choose one of negative-count, not-json") {
		t.Errorf("an unknown example gave %v, want an error listing the examples", err)
	}
}

func TestProduceSendsThePayloadFromExactlyOneSource(t *testing.T) {
	ctx := context.Background()
	stack, err := embedded.Start(ctx, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	brokers := strings.Join(stack.Brokers, ",")
	file := filepath.Join(t.TempDir(), "payload.json")
	if err := os.WriteFile(file, []byte("{\"from\": \"a file\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	produce := func(stdin string, args ...string) (string, error) {
		cmd := newProduceCommand()
		cmd.SetArgs(append(args, "--brokers", brokers))
		cmd.SetIn(strings.NewReader(stdin))
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		return out.String(), err
	}

	type sent struct{ value, key, headers string }
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  sent
	}{
		{"An argument is sent as it is, with --key and --header.", "",
			[]string{`{"product_code": "KB-MECH-001", "inventory_count": 12}`, "--key", "KB-MECH-001", "-H", "trace=1"},
			sent{`{"product_code": "KB-MECH-001", "inventory_count": 12}`, "KB-MECH-001", "trace=1"}},
		{"A file is sent without its trailing newline.", "", []string{"--file", file},
			sent{`{"from": "a file"}`, "", ""}},
		{"Standard input is read when nothing else is given.", "this is no good\n", nil,
			sent{"this is no good", "", ""}},
		{"--file - reads standard input.", "piped", []string{"-f", "-"},
			sent{"piped", "", ""}},
		{"An example is keyed by its product code.", "",
			[]string{"--example", "valid", "--product-code", "MS-WL-002", "--inventory-count", "3"},
			sent{`{"product_code": "MS-WL-002", "inventory_count": 3}`, "MS-WL-002", ""}},
		{"An example without a product has no key.", "", []string{"--example", "not-json"},
			sent{"this is no good", "", ""}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := produce(tc.stdin, tc.args...)
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			if want := fmt.Sprintf("to %s partition 0 offset %d", stack.Topic, i); !strings.Contains(out, want) {
				t.Errorf("printed %q, want it to say %q", out, want)
			}
			recs := readAll(t, stack, stack.Topic)
			if len(recs) != i+1 {
				t.Fatalf("the topic holds %d records, want %d", len(recs), i+1)
			}
			r := recs[i]
			got := sent{value: r.Value}
			if r.Key != nil {
				got.key = *r.Key
			}
			for _, h := range r.Headers {
				got.headers += h.Key + "=" + h.Value
			}
			if got != tc.want {
				t.Errorf("sent %+v, want %+v", got, tc.want)
			}
		})
	}

	errs := []struct {
		name string
		args []string
		want string
	}{
		{"Two sources are refused.", []string{"x", "--example", "valid"}, "give the payload one way, not an argument and --example"},
		{"Example flags need an example.", []string{"x", "--product-code", "A"}, "--product-code and --inventory-count apply only with --example"},
		{"An unknown example is named.", []string{"--example", "typo"}, `--example: "typo" is not an example`},
		{"A missing topic is named.", []string{"x", "--topic", "nope"}, `topic "nope" does not exist`},
		{"A header without = is refused.", []string{"x", "-H", "novalue"}, `--header: "novalue" is not key=value`},
		{"A missing file is named.", []string{"--file", filepath.Join(t.TempDir(), "missing")}, "--file: open "},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := produce("", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if n := len(readAll(t, stack, stack.Topic)); n != len(tests) {
		t.Errorf("the refused commands sent something: %d records, want %d", n, len(tests))
	}
}

// readAll reads every record of topic on the stack.
func readAll(t *testing.T, stack *embedded.Stack, topic string) []deadLetterRecord {
	t.Helper()
	kf := kafkaFlags{brokers: stack.Brokers, timeout: 10 * time.Second}
	client, err := kf.client("test")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	recs, err := readTopic(client, topic, &selection{}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestReplayMessageRebuildsTheOriginalAndLinksTheDeadLetter(t *testing.T) {
	dl := consumer.DeadLetter{OriginalTopic: "orders", OriginalPartition: 2, OriginalOffset: 41,
		OriginalTimestamp: time.Unix(1700000000, 0), ConsumerGroup: "g", Subscription: "ns/s",
		ErrorClass: consumer.ClassValidationFailed, ErrorMessage: "Product code X does not exist", Attempts: 1}
	headers := append([]consumer.Header{{Key: "trace-id", Value: []byte("abc")},
		{Key: HeaderReplayedFrom, Value: []byte("orders.dlq/0/1")}}, dl.Headers()...)
	msg := &sarama.ConsumerMessage{Topic: "orders.dlq", Partition: 0, Offset: 9, Key: []byte("X"),
		Value: []byte(`{"product_code": "X", "inventory_count": 5}`)}
	for _, h := range headers {
		msg.Headers = append(msg.Headers, &sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	rec := newDeadLetterRecord(msg)
	if rec.Original.Topic != "orders" || rec.Original.Partition != 2 || rec.Original.Offset != 41 ||
		rec.ErrorClass != "ValidationFailed" || rec.Attempts != 1 || rec.ReplayedFrom != "orders.dlq/0/1" {
		t.Fatalf("record read back wrong: %+v", rec)
	}

	tests := []struct {
		name          string
		target        string
		partitions    int32
		wantPartition int32
	}{
		{"To the original topic it goes to the original partition.", "orders", 3, 2},
		{"To a topic without that partition it goes where its key hashes.", "orders", 2, hashPartition(t, "orders", "X", 2)},
		{"To another topic it goes where its key hashes.", "orders.retry", 8, hashPartition(t, "orders.retry", "X", 8)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := replayMessage("orders.dlq", tc.target, rec, tc.partitions)
			if m.Topic != tc.target || m.Partition != tc.wantPartition {
				t.Errorf("to %s/%d, want %s/%d", m.Topic, m.Partition, tc.target, tc.wantPartition)
			}
			k, _ := m.Key.Encode()
			v, _ := m.Value.Encode()
			if string(k) != "X" || string(v) != string(msg.Value) {
				t.Errorf("key %q value %q, want the original", k, v)
			}
			var got []string
			for _, h := range m.Headers {
				got = append(got, string(h.Key)+"="+string(h.Value))
			}
			want := []string{"trace-id=abc", HeaderReplayedFrom + "=orders.dlq/0/9"}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("headers %v, want %v (the original ones, the dead-letter reasons dropped, one link to this dead letter)", got, want)
			}
		})
	}
}

func hashPartition(t *testing.T, topic, key string, n int32) int32 {
	t.Helper()
	p, err := sarama.NewHashPartitioner(topic).Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key)}, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeadLetterRecordEncodesBinaryAsBase64(t *testing.T) {
	rec := newDeadLetterRecord(&sarama.ConsumerMessage{Topic: "t.dlq", Value: []byte{0xff, 0xfe}})
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"value":"//4=","valueEncoding":"base64"`) || strings.Contains(string(data), `"key"`) {
		t.Errorf("got %s, want a base64 value and no key", data)
	}
}

func TestOneLineFlattensMultiLineErrors(t *testing.T) {
	err := errorString("failed to connect to `user=u database=x`:\n\t127.0.0.1:1: dial error\n\t127.0.0.1:2: dial error")
	if got, want := oneLine(err), "failed to connect to `user=u database=x`: 127.0.0.1:1: dial error; 127.0.0.1:2: dial error"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
