package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kafkasub/kafkasub/consumer"
	_ "github.com/kafkasub/kafkasub/consumer/inventory" // registers inventory.product-updates
)

// DefaultConfigPath is where a consumer pod finds the configuration the operator mounts.
const DefaultConfigPath = "/etc/kafkasub/config/" + consumer.ConfigFileName

// Log messages of the consumer command.
const (
	logSecretFileChanged = "A secret file changed; stopping so that the container restarts with it"
	logSecretWatchFailed = "Cannot watch the secret files; a rotated Secret needs the pod restarted"
)

// errSecretFileChanged ends the consumer's context when a mounted secret file changed.
var errSecretFileChanged = errors.New("a secret file changed")

// NewConsumerCommand returns `kafkasub consumer --config FILE`: the process every consumer
// pod runs. Secrets come from the files the config names (a mounted Secret), or from the
// environment (consumer.Env*). SIGTERM finishes the batch in flight, commits the marked
// offsets and exits 0; so does a change of a secret file (a rotated Secret, which the kubelet
// writes into the volume), after which the kubelet starts the container again and it
// reads the new values: restarting is the one path that rebuilds every client from the new
// credentials, and it is the same clean shutdown as SIGTERM, so no message is lost.
func NewConsumerCommand() *cobra.Command {
	var configPath, logFormat, logLevel, terminationLog, pprofFlag string
	cmd := &cobra.Command{
		Use:   "consumer",
		Short: "Run a Kafka consumer for one subscription (what every consumer pod runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			defer func() {
				writeTermination(cmd.Context(), terminationLog, terminationLog != DefaultTerminationLog, err, cmd.ErrOrStderr())
			}()
			log, err := newConsumerLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			// The health endpoints log failed checks through controller-runtime's logger.
			ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
			cfg, err := consumer.Load(configPath, nil)
			if err != nil {
				return &consumer.InvalidConfigError{Err: err}
			}
			if err := consumer.CheckRegistered(cfg.Handler); err != nil {
				return err
			}
			ctx, cancel := context.WithCancelCause(cmd.Context())
			defer cancel(nil)
			if pprofFlag != "" {
				addr, err := consumer.PprofAddr(pprofFlag)
				if err != nil {
					return err
				}
				if _, err := servePprof(ctx, addr, log); err != nil {
					return err
				}
			}
			go func() {
				file, err := consumer.WatchSecretFiles(ctx, cfg.SecretFiles(), consumer.DefaultSecretFilesPoll)
				switch {
				case err != nil:
					log.Warn(logSecretWatchFailed, "error", err)
				case file != "":
					log.Info(logSecretFileChanged, "file", file)
					cancel(errSecretFileChanged)
				}
			}()
			return consumer.Run(ctx, cfg, consumer.WithLogger(log))
		},
	}
	cmd.Flags().StringVar(&configPath, "config", DefaultConfigPath, "consumer configuration file (YAML)")
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().StringVar(&pprofFlag, "pprof-addr", "",
		"serve Go profiles (net/http/pprof) at this address, e.g. :6060; off when empty; a port without a host binds loopback only")
	cmd.Flags().StringVar(&terminationLog, "termination-log", defaultTerminationLog(),
		"file for the reason the consumer stopped with an error, as \"<Reason>: <message>\" (env "+EnvTerminationLog+")")
	return cmd
}

func newConsumerLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q must be debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q must be json or text", format)
}
