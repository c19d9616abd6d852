package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/embedded"
)

// Output formats of dlq list and dlq replay.
const (
	outputTable = "table"
	outputJSON  = "json"
)

type dlqOptions struct {
	kafka  kafkaFlags
	topic  string
	output string
	sel    selection
}

func (o *dlqOptions) register(fs *pflag.FlagSet) {
	o.kafka.register(fs)
	fs.StringVar(&o.topic, "topic", embedded.DefaultDeadLetterTopic, "dead-letter topic")
	fs.StringVarP(&o.output, "output", "o", outputTable, "output format: table or json")
	fs.Int32SliceVar(&o.sel.partitions, "partition", nil, "only these dead-letter topic `partitions` (comma-separated)")
	fs.StringVar(&o.sel.offsets, "offsets", "", "only these dead-letter topic `offsets`: N, A-B, A- or -B (inclusive)")
	fs.StringSliceVar(&o.sel.classes, "class", nil, "only these error `classes`, e.g. ValidationFailed (comma-separated)")
}

func (o *dlqOptions) check() error {
	if o.output != outputTable && o.output != outputJSON {
		return fmt.Errorf("--output: %q must be %s or %s", o.output, outputTable, outputJSON)
	}
	return o.sel.parse()
}

// read returns the selected records of the dead-letter topic.
func (o *dlqOptions) read(client sarama.Client) ([]deadLetterRecord, error) {
	return readTopic(client, o.topic, &o.sel, o.kafka.timeout)
}

func newDLQCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay a dead-letter topic",
		Long: `Inspect and replay a dead-letter topic. Every dead-lettered record keeps the original key,
value and headers, and carries headers naming where it came from (topic, partition,
offset, timestamp, consumer group, subscription) and why (error class, message, attempts).`,
	}
	cmd.AddCommand(newDLQListCommand(), newDLQReplayCommand())
	return cmd
}

func newDLQListCommand() *cobra.Command {
	var o dlqOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print the messages of a dead-letter topic with why they are there",
		Long: `Print every message in the dead-letter topic (as it is when the command starts), with its
original coordinates, error class, error message and attempts. Nothing is consumed in a
group and nothing is committed or deleted.`,
		Example: `  kafkasub dlq list
  kafkasub dlq list --class ValidationFailed --output json
  kafkasub dlq list --brokers kafka:9092 --topic orders.dlq --partition 0 --offsets 10-20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			client, err := o.kafka.client("kafkasub-dlq")
			if err != nil {
				return err
			}
			defer client.Close()
			recs, err := o.read(client)
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), recs)
			}
			return writeDeadLetterTable(cmd.OutOrStdout(), o.topic, recs)
		},
	}
	o.register(cmd.Flags())
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeDeadLetterTable(w io.Writer, topic string, recs []deadLetterRecord) error {
	if len(recs) == 0 {
		_, err := fmt.Fprintf(w, "No dead-lettered messages in %s.\n", topic)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tOFFSET\tORIGINAL (TOPIC/PARTITION@OFFSET)\tCLASS\tATTEMPTS\tERROR\tKEY\tVALUE")
	for _, r := range recs {
		key := "-"
		if r.Key != nil {
			key = shorten(*r.Key, 20)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s/%d@%d\t%s\t%d\t%s\t%s\t%s\n", r.Partition, r.Offset,
			r.Original.Topic, r.Original.Partition, r.Original.Offset, r.ErrorClass, r.Attempts,
			shorten(r.ErrorMessage, 70), key, shorten(r.Value, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead-lettered message(s) in %s.\n", len(recs), topic)
	return err
}

// shorten keeps s on one line and at most n runes.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return s
}

type replayOptions struct {
	dlqOptions
	all     bool
	toTopic string
	dryRun  bool
}

// replayed is one record dlq replay sent (or would send).
type replayed struct {
	From       recordRef `json:"from"`
	To         recordRef `json:"to"`
	ErrorClass string    `json:"errorClass"`
	DryRun     bool      `json:"dryRun,omitempty"`
}

type recordRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Offset is -1 for a record not sent (dry run).
	Offset int64 `json:"offset"`
}

func newDLQReplayCommand() *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Re-publish dead-lettered messages to their original topic once the cause is fixed",
		Long: `Re-publish chosen dead-lettered messages to the topic they were consumed from (or
--to-topic), with their original key, value and headers, each to its original partition
when the topic still has it (so per-key order follows the original producer's
partitioning). Each re-published message carries the header ` + HeaderReplayedFrom + `
"<dead-letter topic>/<partition>/<offset>" linking it to the dead letter it came from.

Choose the messages with --all, --offsets, --partition and/or --class (together they
narrow the choice). Nothing is deleted from the dead-letter topic: replaying the same
message twice sends it twice. --dry-run prints what would be sent and sends nothing.`,
		Example: `  kafkasub dlq replay --class ValidationFailed --dry-run
  kafkasub dlq replay --offsets 3-7
  kafkasub dlq replay --all --to-topic inventory_management_product_updates.retry`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.register(cmd.Flags())
	cmd.Flags().BoolVar(&o.all, "all", false, "replay every message of the dead-letter topic")
	cmd.Flags().StringVar(&o.toTopic, "to-topic", "", "send to this topic instead of each message's original topic")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be sent; send nothing")
	return cmd
}

func (o *replayOptions) run(cmd *cobra.Command) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.all == !o.sel.empty() {
		if o.all {
			return errors.New("--all replays everything; leave out --partition, --offsets and --class, or --all")
		}
		return errors.New("choose what to replay: --all, or --offsets, --partition and/or --class")
	}
	if o.toTopic != "" && o.toTopic == o.topic {
		return fmt.Errorf("--to-topic: %q is the dead-letter topic itself", o.toTopic)
	}
	client, err := o.kafka.client("kafkasub-dlq-replay", func(sc *sarama.Config) {
		sc.Producer.Partitioner = sarama.NewManualPartitioner // replayMessage picks the partition
	})
	if err != nil {
		return err
	}
	defer client.Close()
	recs, err := o.read(client)
	if err != nil {
		return err
	}
	msgs := make([]*sarama.ProducerMessage, len(recs))
	out := make([]replayed, len(recs))
	partitions := map[string][]int32{}
	for i, r := range recs {
		target := o.toTopic
		if target == "" {
			target = r.Original.Topic
		}
		if target == "" {
			return fmt.Errorf("%s partition %d offset %d has no %s header; give --to-topic", r.Topic, r.Partition, r.Offset, consumer.HeaderOriginalTopic)
		}
		if target == o.topic {
			return fmt.Errorf("%s partition %d offset %d names the dead-letter topic itself as its original topic; give --to-topic", r.Topic, r.Partition, r.Offset)
		}
		parts, ok := partitions[target]
		if !ok {
			if parts, err = topicPartitions(client, target); err != nil {
				return err
			}
			partitions[target] = parts
		}
		msgs[i] = replayMessage(o.topic, target, r, int32(len(parts)))
		out[i] = replayed{
			From:       recordRef{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset},
			To:         recordRef{Topic: target, Partition: msgs[i].Partition, Offset: -1},
			ErrorClass: r.ErrorClass,
			DryRun:     o.dryRun,
		}
	}
	if !o.dryRun && len(msgs) > 0 {
		producer, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			return o.kafka.unreachable(err)
		}
		defer producer.Close()
		for i, m := range msgs {
			if _, _, err := producer.SendMessage(m); err != nil {
				writeReplayed(cmd.OutOrStdout(), o.output, out[:i])
				return fmt.Errorf("replay %s partition %d offset %d to %s: %w (%d of %d sent)",
					out[i].From.Topic, out[i].From.Partition, out[i].From.Offset, m.Topic, err, i, len(msgs))
			}
			out[i].To.Partition, out[i].To.Offset = m.Partition, m.Offset
		}
	}
	return writeReplayed(cmd.OutOrStdout(), o.output, out)
}

// replayMessage rebuilds the original record from a dead letter: key, value, the original
// headers, and HeaderReplayedFrom. It goes to the original partition when the target has
// it, else to the partition of its key's hash (or partition 0 without a key).
func replayMessage(dlqTopic, target string, r deadLetterRecord, numPartitions int32) *sarama.ProducerMessage {
	headers := make([]consumer.Header, 0, len(r.original)+1)
	for _, h := range r.original {
		if h.Key != HeaderReplayedFrom {
			headers = append(headers, h)
		}
	}
	headers = append(headers, consumer.Header{Key: HeaderReplayedFrom,
		Value: fmt.Appendf(nil, "%s/%d/%d", dlqTopic, r.Partition, r.Offset)})
	m := &sarama.ProducerMessage{Topic: target, Headers: consumer.HeadersToSarama(headers)}
	if r.key != nil {
		m.Key = sarama.ByteEncoder(r.key)
	}
	if r.value != nil {
		m.Value = sarama.ByteEncoder(r.value)
	}
	switch {
	case target == r.Original.Topic && r.Original.Partition < numPartitions:
		m.Partition = r.Original.Partition
	case m.Key != nil && numPartitions > 0:
		p, err := sarama.NewHashPartitioner(target).Partition(m, numPartitions)
		if err == nil {
			m.Partition = p
		}
	}
	return m
}

func writeReplayed(w io.Writer, output string, out []replayed) error {
	if output == outputJSON {
		if out == nil {
			out = []replayed{}
		}
		return writeJSON(w, out)
	}
	if len(out) == 0 {
		_, err := fmt.Fprintln(w, "No dead-lettered message matched; nothing replayed.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM (TOPIC/PARTITION@OFFSET)\tCLASS\tTO (TOPIC/PARTITION@OFFSET)")
	dry := out[0].DryRun
	for _, r := range out {
		to := fmt.Sprintf("%s/%d@%d", r.To.Topic, r.To.Partition, r.To.Offset)
		if r.DryRun {
			to = fmt.Sprintf("%s/%d (would send)", r.To.Topic, r.To.Partition)
		}
		fmt.Fprintf(tw, "%s/%d@%d\t%s\t%s\n", r.From.Topic, r.From.Partition, r.From.Offset, r.ErrorClass, to)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verb := "Replayed"
	if dry {
		verb = "Dry run: would replay"
	}
	_, err := fmt.Fprintf(w, "%s %d message(s); the dead-letter topic keeps them all.\n", verb, len(out))
	return err
}
