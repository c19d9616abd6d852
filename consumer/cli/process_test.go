package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/embedded"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// The tests in this file run the real kafkasub binary, built once from the module root.

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// kafkasubBinary builds the kafkasub binary (main.go at the module root) into a temporary
// directory, once per test run.
func kafkasubBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		binaryDir, binaryErr = os.MkdirTemp("", "kafkasub-bin-")
		if binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "kafkasub")
		cmd := exec.Command("go", "build", "-o", binaryPath, "github.com/kafkasub/kafkasub")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// runKafkasub runs the binary to completion and returns its stdout, stderr and exit code.
func runKafkasub(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runKafkasubIn(t, stdin, nil, args...)
}

// runKafkasubEnv is runKafkasub with extra environment variables (NAME=value).
func runKafkasubEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runKafkasubIn(t, "", env, args...)
}

func runKafkasubIn(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kafkasubBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("kafkasub %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// mustKafkasub runs the binary and fails the test unless it exits 0.
func mustKafkasub(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runKafkasub(t, "", args...)
	if code != 0 {
		t.Fatalf("kafkasub %s exited %d:\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// devProcess is a running `kafkasub dev`.
type devProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	lines  chan string
	exited chan error
}

func startDev(t *testing.T, args ...string) *devProcess {
	t.Helper()
	d := &devProcess{cmd: exec.Command(kafkasubBinary(t), append([]string{"dev"}, args...)...),
		lines: make(chan string, 1024), exited: make(chan error, 1)}
	var err error
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = &lockedWriter{mu: &d.mu, w: &d.out}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.mu.Lock()
			d.out.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			select {
			case d.lines <- sc.Text():
			default:
			}
		}
		close(d.lines)
		d.exited <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
		}
	})
	return d
}

func (d *devProcess) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// waitLine returns the first line starting with prefix.
func (d *devProcess) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("kafkasub dev exited before printing %q:\n%s", prefix, d.output())
			}
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return strings.TrimSpace(l)
			}
		case <-deadline:
			t.Fatalf("kafkasub dev did not print %q within %s:\n%s", prefix, timeout, d.output())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// eventually polls cond until it holds or a minute passed.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: still not so after a minute; last: %s", what, last)
}

func TestDevDrivenByProduceDLQAndReplay(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "shop.sqlite3")
	dev := startDev(t, "--listen", "127.0.0.1:0", "--database", dbPath)
	brokerLine := dev.waitLine(t, "broker", time.Minute)
	broker := strings.TrimSpace(strings.TrimPrefix(brokerLine, "broker"))
	dev.waitLine(t, DevReadyLine, time.Minute)
	for _, want := range []string{inventory.Topic, embedded.DefaultDeadLetterTopic, dbPath} {
		if !strings.Contains(dev.output(), want) {
			t.Errorf("dev did not print %q:\n%s", want, dev.output())
		}
	}

	// The database dev prepared, looked at from outside as a person would.
	db, err := consumer.OpenDatabase(consumer.DriverSQLite, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	inventoryOf := func(code string) (int64, error) {
		var p inventory.Product
		err := db.Where("code = ?", code).Take(&p).Error
		return p.Inventory, err
	}
	first := inventory.SeedProducts[0].Code

	for _, ex := range []string{ExampleValid, ExampleNegativeCount, ExampleUnknownCode, ExampleNotJSON, ExampleUnexpectedAttributes} {
		out := mustKafkasub(t, "produce", "--brokers", broker, "--example", ex)
		if !strings.Contains(out, "Sent ") {
			t.Errorf("produce --example %s printed %q", ex, out)
		}
	}
	eventually(t, "the valid update is applied", func() (bool, string) {
		n, err := inventoryOf(first)
		return err == nil && n == DefaultExampleCount, fmt.Sprintf("inventory %d, err %v", n, err)
	})

	var recs []deadLetterRecord
	eventually(t, "four messages are in the dead-letter topic", func() (bool, string) {
		out := mustKafkasub(t, "dlq", "list", "--brokers", broker, "--output", "json")
		recs = nil
		if err := json.Unmarshal([]byte(out), &recs); err != nil {
			return false, fmt.Sprintf("%v: %s", err, out)
		}
		return len(recs) == 4, out
	})
	wantDLQ := []struct {
		offset int64
		class  consumer.ErrorClass
		msg    string
	}{
		{1, consumer.ClassValidationFailed, inventory.MsgInventoryCountNegative},
		{2, consumer.ClassValidationFailed, inventory.MsgProductCodeUnknown(UnknownProductCode)},
		{3, consumer.ClassInvalidPayload, "payload is not a JSON object"},
		{4, consumer.ClassUnexpectedAttributes, "unexpected attributes: greeting"},
	}
	for i, w := range wantDLQ {
		r := recs[i]
		if r.Original.Topic != inventory.Topic || r.Original.Offset != w.offset || r.ErrorClass != string(w.class) ||
			!strings.Contains(r.ErrorMessage, w.msg) || r.Attempts != 1 || r.ConsumerGroup != embedded.ConsumerGroup {
			t.Errorf("dead letter %d: %+v, want original offset %d, class %s, message with %q, 1 attempt, group %s",
				i, r, w.offset, w.class, w.msg, embedded.ConsumerGroup)
		}
	}
	if n, _ := inventoryOf(first); n != DefaultExampleCount {
		t.Errorf("the dead-lettered messages changed the inventory to %d", n)
	}

	table := mustKafkasub(t, "dlq", "list", "--brokers", broker, "--class", "ValidationFailed")
	if !strings.Contains(table, "2 dead-lettered message(s)") || !strings.Contains(table, "Product code NO_SUCH_CODE does not exist") {
		t.Errorf("dlq list --class ValidationFailed printed:\n%s", table)
	}

	// A dry run sends nothing.
	unknown := recs[1]
	dry := mustKafkasub(t, "dlq", "replay", "--brokers", broker, "--all", "--dry-run", "-o", "json")
	var planned []replayed
	if err := json.Unmarshal([]byte(dry), &planned); err != nil || len(planned) != 4 || !planned[0].DryRun || planned[0].To.Offset != -1 {
		t.Fatalf("dry run printed %s (%v), want 4 planned replays", dry, err)
	}

	// Fix the cause (the product now exists), replay that one message, and it is applied.
	if err := inventory.Insert(context.Background(), db, []inventory.Product{{Code: UnknownProductCode, Name: "Added later", Inventory: 0}}); err != nil {
		t.Fatal(err)
	}
	out := mustKafkasub(t, "dlq", "replay", "--brokers", broker, "--offsets", fmt.Sprint(unknown.Offset), "-o", "json")
	var done []replayed
	if err := json.Unmarshal([]byte(out), &done); err != nil || len(done) != 1 {
		t.Fatalf("replay printed %s (%v), want one replay", out, err)
	}
	if done[0].From.Offset != unknown.Offset || done[0].To.Topic != inventory.Topic || done[0].To.Offset != 5 {
		t.Errorf("replayed %+v, want %s offset %d to %s offset 5", done[0], unknown.Topic, unknown.Offset, inventory.Topic)
	}
	eventually(t, "the replayed message is applied", func() (bool, string) {
		n, err := inventoryOf(UnknownProductCode)
		return err == nil && n == 5, fmt.Sprintf("inventory %d, err %v", n, err)
	})
	if !strings.Contains(dev.output(), "applied        "+inventory.Topic+" partition 0 offset 5") {
		t.Errorf("dev did not report the replayed message applied:\n%s", dev.output())
	}

	// Nothing was deleted from the dead-letter topic, and the replayed copy did not come back.
	if err := json.Unmarshal([]byte(mustKafkasub(t, "dlq", "list", "--brokers", broker, "-o", "json")), &recs); err != nil || len(recs) != 4 {
		t.Errorf("after the replay the dead-letter topic holds %d records (%v), want the same 4", len(recs), err)
	}

	// The database the consumer uses goes down by hand, a message waits, and is applied when it is back.
	fmt.Fprintln(dev.stdin, "db down")
	dev.waitLine(t, "console        the consumer's database is now unreachable", time.Minute)
	mustKafkasub(t, "produce", "--brokers", broker, "--example", ExampleValid, "--inventory-count", "31")
	dev.waitLine(t, "retrying", time.Minute)
	if n, _ := inventoryOf(first); n != DefaultExampleCount {
		t.Errorf("while the consumer's database was down the inventory became %d", n)
	}
	fmt.Fprintln(dev.stdin, "db up")
	eventually(t, "the message sent while the database was down is applied", func() (bool, string) {
		n, err := inventoryOf(first)
		return err == nil && n == 31, fmt.Sprintf("inventory %d, err %v", n, err)
	})

	// Ctrl-C stops dev cleanly and the database file stays.
	if err := dev.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-dev.exited:
		if err != nil {
			t.Errorf("dev exited with %v after Ctrl-C:\n%s", err, dev.output())
		}
	case <-time.After(time.Minute):
		t.Fatalf("dev did not stop within a minute of Ctrl-C:\n%s", dev.output())
	}
	if !strings.Contains(dev.output(), "Stopping.") {
		t.Errorf("dev did not say it stopped:\n%s", dev.output())
	}
	if _, err := os.Stat(dbPath); err != nil {
		t.Errorf("the --database file is gone after dev stopped: %v", err)
	}
}

func TestBadInputIsOneClearLineAndANonZeroExit(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"An unknown flag.", []string{"produce", "--bogus"}, "kafkasub: unknown flag: --bogus"},
		{"An unreachable broker for produce.", []string{"produce", "--brokers", "127.0.0.1:1", "--example", "valid"},
			"kafkasub: cannot reach Kafka at 127.0.0.1:1: "},
		{"An unreachable broker for dlq list.", []string{"dlq", "list", "--brokers", "127.0.0.1:1"},
			"kafkasub: cannot reach Kafka at 127.0.0.1:1: "},
		{"An unreachable broker for dlq replay.", []string{"dlq", "replay", "--all", "--brokers", "127.0.0.1:1"},
			"kafkasub: cannot reach Kafka at 127.0.0.1:1: "},
		{"A broker address without a port.", []string{"dlq", "list", "--brokers", "localhost"},
			`kafkasub: --brokers: "localhost" is not host:port`},
		{"A replay without a choice.", []string{"dlq", "replay"}, "kafkasub: choose what to replay: --all, or --offsets, --partition and/or --class"},
		{"A bad output format.", []string{"dlq", "list", "-o", "yaml"}, `kafkasub: --output: "yaml" must be table or json`},
		{"A database without a DSN.", []string{"db", "migrate"}, "kafkasub: no database: give --dsn or set " + consumer.EnvDatabaseDSN},
		{"An unknown database driver.", []string{"db", "seed", "--driver", "oracle", "--dsn", "x"}, `kafkasub: --driver: "oracle" must be postgres, mysql or sqlite`},
		{"An unreachable PostgreSQL keeps its password out.", []string{"db", "migrate", "--driver", "postgres",
			"--dsn", "postgres://shop:s3cret@127.0.0.1:1/shop?connect_timeout=2", "--timeout", "3s"},
			"kafkasub: cannot reach the postgres database: "},
		{"Seeding before migrating.", []string{"db", "seed", "--dsn", filepath.Join(t.TempDir(), "empty.sqlite3")},
			"kafkasub: the sqlite database has no products table; run `kafkasub db migrate` first"},
		{"A dev listen address without a port.", []string{"dev", "--listen", "localhost"}, `kafkasub: listen address "localhost" is not host:port`},
		{"A dev listen address in use.", []string{"dev", "--listen", taken.Addr().String()},
			"kafkasub: start the embedded Kafka broker: listen tcp " + taken.Addr().String() + ": bind: address already in use (is another broker running there? pick an address with --listen)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runKafkasub(t, "", tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; stdout:\n%s", stdout)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Errorf("stderr:\n%s\nwant one line starting %q", stderr, tc.want)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "s3cret") {
				t.Errorf("stderr holds a stack trace or a secret:\n%s", stderr)
			}
		})
	}
}

func TestHelpReadsWell(t *testing.T) {
	for _, args := range [][]string{{"demo"}, {"dev"}, {"produce"}, {"dlq"}, {"dlq", "list"}, {"dlq", "replay"}, {"db"}, {"db", "migrate"}, {"db", "seed"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out := mustKafkasub(t, append(args, "--help")...)
			if !strings.Contains(out, "Usage:") || !strings.Contains(out, "kafkasub "+strings.Join(args, " ")) {
				t.Errorf("--help printed:\n%s", out)
			}
		})
	}
}

func TestDemoBinaryExitsZeroAndPrintsTheTable(t *testing.T) {
	out, errOut, code := runKafkasub(t, "", "demo")
	if code != 0 {
		t.Fatalf("kafkasub demo exited %d:\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "All 6 cases ended as expected.") || strings.Count(out, "  yes  ") != 6 {
		t.Errorf("kafkasub demo printed:\n%s", out)
	}
}
