package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runConsumerCommand(t *testing.T, args ...string) error {
	t.Helper()
	cmd := NewConsumerCommand()
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return cmd.ExecuteContext(ctx)
}

func TestConsumerCommandNamesAMissingConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	err := runConsumerCommand(t, "--config", path)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("error %v, want one naming the missing file", err)
	}
}

func TestConsumerCommandNamesEveryInvalidField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("handler: inventory.product-updates\nkafka:\n  topic: t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAFKASUB_DATABASE_DSN", "")
	err := runConsumerCommand(t, "--config", path)
	if err == nil {
		t.Fatal("an incomplete configuration was accepted")
	}
	for _, field := range []string{"kafka.bootstrapServers", "kafka.consumerGroup", "deadLetter.topic", "database.driver", "KAFKASUB_DATABASE_DSN"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
}

func TestConsumerCommandRefusesAnUnknownLogFormat(t *testing.T) {
	err := runConsumerCommand(t, "--log-format", "xml")
	if err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("error %v, want one naming --log-format", err)
	}
}
