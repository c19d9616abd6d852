package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/kafkasub/kafkasub/consumer/inventory"
)

type produceOptions struct {
	kafka   kafkaFlags
	topic   string
	key     string
	keySet  bool
	file    string
	example string
	code    string
	count   int64
	headers []string
}

func newProduceCommand() *cobra.Command {
	var o produceOptions
	cmd := &cobra.Command{
		Use:   "produce [PAYLOAD]",
		Short: "Send one message to a Kafka topic",
		Long: `Send one message to a topic and print where it landed (partition and offset).

The payload comes from exactly one of: the argument, --file (a path, or - for stdin), piped
standard input, or --example, one of the mission's cases:

  valid                  {"product_code": "<code>", "inventory_count": 25}
  negative-count         {"product_code": "<code>", "inventory_count": -1}
  unknown-code           {"product_code": "NO_SUCH_CODE", "inventory_count": 5}
  not-json               this is no good
  unexpected-attributes  {"greeting": "hello"}

<code> is --product-code, by default the first seeded product's. An example that names a
product is keyed by its code (per-product order), unless --key says otherwise.`,
		Example: `  kafkasub produce --example valid
  kafkasub produce --example valid --product-code MS-WL-002 --inventory-count 3
  kafkasub produce '{"product_code": "KB-MECH-001", "inventory_count": 12}' --key KB-MECH-001
  echo 'this is no good' | kafkasub produce --brokers kafka:9092 --topic my-topic`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.keySet = cmd.Flags().Changed("key")
			return o.run(cmd, args)
		},
	}
	fs := cmd.Flags()
	o.kafka.register(fs)
	fs.StringVar(&o.topic, "topic", inventory.Topic, "topic to send to")
	fs.StringVar(&o.key, "key", "", "message key (default: none, or the product code for an --example that names a product)")
	fs.StringVarP(&o.file, "file", "f", "", "read the payload from this file (- for standard input)")
	fs.StringVar(&o.example, "example", "", "send one of the mission's payloads: "+strings.Join(exampleNames(), ", "))
	fs.StringVar(&o.code, "product-code", "", "product code of the valid and negative-count examples (default: the first seeded product's)")
	fs.Int64Var(&o.count, "inventory-count", DefaultExampleCount, "inventory count of the valid example")
	fs.StringArrayVarP(&o.headers, "header", "H", nil, "record header key=value (repeatable)")
	return cmd
}

func (o *produceOptions) run(cmd *cobra.Command, args []string) error {
	value, key, err := o.payload(cmd, args)
	if err != nil {
		return err
	}
	if o.topic == "" {
		return errors.New("--topic: a topic name is required")
	}
	msg := &sarama.ProducerMessage{Topic: o.topic, Value: sarama.ByteEncoder(value)}
	if key != nil {
		msg.Key = sarama.ByteEncoder(key)
	}
	for _, h := range o.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return fmt.Errorf("--header: %q is not key=value", h)
		}
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}

	client, err := o.kafka.client("kafkasub-produce")
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := topicPartitions(client, o.topic); err != nil {
		return err
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return o.kafka.unreachable(err)
	}
	defer producer.Close()
	partition, offset, err := producer.SendMessage(msg)
	if err != nil {
		return fmt.Errorf("send to %s: %w", o.topic, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Sent %s to %s partition %d offset %d\n", describePayload(value), o.topic, partition, offset)
	return nil
}

// payload returns the value and key to send, from exactly one source.
func (o *produceOptions) payload(cmd *cobra.Command, args []string) (value, key []byte, err error) {
	var sources []string
	if len(args) == 1 {
		sources = append(sources, "an argument")
	}
	if o.file != "" {
		sources = append(sources, "--file")
	}
	if o.example != "" {
		sources = append(sources, "--example")
	}
	if len(sources) > 1 {
		return nil, nil, fmt.Errorf("give the payload one way, not %s", strings.Join(sources, " and "))
	}
	if o.example == "" && (cmd.Flags().Changed("product-code") || cmd.Flags().Changed("inventory-count")) {
		return nil, nil, errors.New("--product-code and --inventory-count apply only with --example")
	}
	if o.keySet {
		key = []byte(o.key)
	}
	switch {
	case len(args) == 1:
		return []byte(args[0]), key, nil
	case o.example != "":
		ex, err := buildExample(o.example, o.code, o.count)
		if err != nil {
			return nil, nil, err
		}
		if key == nil && ex.Code != "" {
			key = []byte(ex.Code)
		}
		return []byte(ex.Value), key, nil
	case o.file == "-" || (o.file == "" && !isTerminal(cmd.InOrStdin())):
		value, err = io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, nil, fmt.Errorf("read the payload from standard input: %w", err)
		}
		return trimNewline(value), key, nil
	case o.file != "":
		value, err = os.ReadFile(o.file)
		if err != nil {
			return nil, nil, fmt.Errorf("--file: %w", err)
		}
		return trimNewline(value), key, nil
	}
	return nil, nil, errors.New("no payload: give it as an argument, with --file, on standard input, or pick an --example")
}

// trimNewline drops the one trailing newline an editor or echo adds.
func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// isTerminal reports whether r is a character device (a person typing), in which case
// produce does not wait for a payload on it.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err != nil || st.Mode()&os.ModeCharDevice != 0
}

// describePayload shortens a payload for one line of output.
func describePayload(v []byte) string {
	s := strings.ReplaceAll(string(v), "\n", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return fmt.Sprintf("%q", s)
}
