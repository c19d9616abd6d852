package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kafkasub/kafkasub/consumer"
)

// EnvTerminationLog names the file the consumer writes its termination message to, in
// place of DefaultTerminationLog (for tests and for running outside a pod).
const EnvTerminationLog = "KAFKASUB_TERMINATION_LOG"

// DefaultTerminationLog is the container's terminationMessagePath Kubernetes defaults to.
const DefaultTerminationLog = "/dev/termination-log"

func defaultTerminationLog() string {
	if p := os.Getenv(EnvTerminationLog); p != "" {
		return p
	}
	return DefaultTerminationLog
}

// writeTermination writes consumer.TerminationMessage(err) to path, unless err is nil or
// the consumer was stopped (ctx ended). It creates path only if create; the consumer
// command creates any path but DefaultTerminationLog, which the kubelet creates in a pod
// (outside one, /dev is not ours to fill). A failure to write is reported on stderr, not
// returned: the consumer's own error is what matters.
func writeTermination(ctx context.Context, path string, create bool, err error, stderr io.Writer) {
	if err == nil || (ctx.Err() != nil && errors.Is(err, ctx.Err())) || path == "" {
		return
	}
	flags := os.O_WRONLY | os.O_TRUNC
	if create {
		flags |= os.O_CREATE
	}
	f, ferr := os.OpenFile(path, flags, 0o644)
	if errors.Is(ferr, os.ErrNotExist) && !create {
		return
	}
	if ferr == nil {
		_, ferr = io.WriteString(f, consumer.TerminationMessage(err))
		if cerr := f.Close(); ferr == nil {
			ferr = cerr
		}
	}
	if ferr != nil {
		fmt.Fprintf(stderr, "kafkasub: cannot write the termination message: %v\n", ferr)
	}
}
