package consumer_test

// Classes of failure against real consumer processes: a member frozen while its
// partitions move, kill -9 over and over, one hostile message in a batch. Each test
// states the class in its name and checks the database, the dead-letter topic and the
// group afterwards.

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// process is a consumer process of a chaos test; it is killed when the test ends.
type process struct {
	cmd  *exec.Cmd
	done chan error // receives the process's exit once
	err  error
	exit bool
}

func startProcess(t *testing.T, cfg *consumer.Config, dsn string, env ...string) *process {
	t.Helper()
	p := &process{cmd: startConsumerProcess(t, cfg, dsn, env...), done: make(chan error, 1)}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		p.wait(t, 10*time.Second)
	})
	return p
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to d for the process to exit and returns its exit error.
func (p *process) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	if p.exit {
		return p.err
	}
	select {
	case p.err = <-p.done:
		p.exit = true
		return p.err
	case <-time.After(d):
		t.Fatalf("the consumer process did not exit within %s", d)
		return nil
	}
}

// eventually polls cond every 10ms until it holds or d passes; then it fails with what
// describe says about the state.
func eventually(t *testing.T, d time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// catalogue opens the database, migrates the products table and inserts a product for
// each code with inventory -1, which no update in these tests sets.
func catalogue(t *testing.T, driver, dsn string, codes []string) *gorm.DB {
	t.Helper()
	db := consumertest.OpenDatabase(t, driver, dsn)
	ctx := context.Background()
	if err := inventory.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	products := make([]inventory.Product, len(codes))
	for i, c := range codes {
		products[i] = inventory.Product{Code: c, Name: "chaos", Inventory: -1}
	}
	if err := inventory.Insert(ctx, db, products); err != nil {
		t.Fatal(err)
	}
	return db
}

func inventories(t *testing.T, db *gorm.DB) map[string]int64 {
	t.Helper()
	var rows []inventory.Product
	if err := db.Select("code", "inventory").Find(&rows).Error; err != nil {
		t.Fatalf("read products: %v", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Code] = r.Inventory
	}
	return out
}

func update(code string, n int64) string {
	return fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, code, n)
}

func partitionOf(code string, partitions int32) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(code))
	return int32(h.Sum32() % uint32(partitions))
}

func send(t *testing.T, p sarama.SyncProducer, msgs []*sarama.ProducerMessage) {
	t.Helper()
	for start := 0; start < len(msgs); start += 1000 {
		if err := p.SendMessages(msgs[start:min(start+1000, len(msgs))]); err != nil {
			t.Fatal(err)
		}
	}
}

// deadLetters reads the dead-letter topic and counts its records per original
// "partition/offset".
func deadLetters(t *testing.T, brokers []string, dlq string, want int, timeout time.Duration) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range consumertest.ReadTopic(t, brokers, dlq, want, timeout) {
		d, _ := consumer.ParseDeadLetter(consumer.HeadersFromSarama(r.Headers))
		out[fmt.Sprintf("%d/%d", d.OriginalPartition, d.OriginalOffset)]++
	}
	return out
}

// withParam returns the PostgreSQL DSN (URL or key=value form) with a run-time parameter.
func withParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// TestAFrozenMemberChangesNothingAfterItsPartitionsMoved: member A is frozen (SIGSTOP)
// with messages fetched and not yet processed; its partitions move to B, which applies
// everything after them; when A thaws, its stale batches must change nothing. Twice: the
// stale batch races A's discovery that it left the group, so each freeze is one chance.
func TestAFrozenMemberChangesNothingAfterItsPartitionsMoved(t *testing.T) {
	t.Parallel()
	const (
		partitions = 4
		products   = 1000
		rounds     = 20 // of the wave A is frozen in
		freezes    = 2
	)
	dsn := consumertest.PostgresDSN(t)
	topic := consumertest.UniqueName("frozen")
	dlq := topic + ".dlq"
	brokers := consumertest.RealKafka(t, partitions, topic, dlq)
	codes := make([]string, products)
	for i := range codes {
		codes[i] = fmt.Sprintf("F-%04d", i)
	}
	db := catalogue(t, consumer.DriverPostgres, dsn, codes)
	p := consumertest.Producer(t, brokers)
	// Wave w, round r sets every product to w*1e6 + r, and has an invalid update (a
	// negative count) of every tenth product, which is dead-lettered.
	invalid := 0
	wave := func(w, rounds int) {
		var msgs []*sarama.ProducerMessage
		for r := range rounds {
			for i, c := range codes {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: partitionOf(c, partitions),
					Key: sarama.StringEncoder(c), Value: sarama.StringEncoder(update(c, int64(w*1e6+r)))})
				if i%10 == 0 {
					msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: partitionOf(c, partitions),
						Key: sarama.StringEncoder(c), Value: sarama.StringEncoder(update(c, -int64(w*1e6+r)))})
					invalid++
				}
			}
		}
		send(t, p, msgs)
	}
	atLeast := func(v int) func() int {
		return func() int {
			n := 0
			for _, got := range inventories(t, db) {
				if got >= int64(v) {
					n++
				}
			}
			return n
		}
	}
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	members := func(group string) int {
		d, err := admin.DescribeConsumerGroups([]string{group})
		if err != nil || len(d) != 1 || d[0].State != "Stable" {
			return 0
		}
		return len(d[0].Members)
	}

	cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverPostgres, "")
	// A member frozen inside a transaction holds its row locks and B would wait for them
	// until A thaws: the server ends such a session after 2s idle, as a production
	// database should be configured to.
	consumerDSN := withParam(dsn, "idle_in_transaction_session_timeout", "2000")
	session := envConsumerSessionTimeout + "=6s" // the broker's group.min.session.timeout.ms
	// A takes small batches: short transactions, so a stale one can commit in the moment
	// between A thawing and A learning it lost its partitions.
	small := *cfg
	small.Batch.MaxMessages = 2
	a := startProcess(t, &small, consumerDSN, session)
	wave(1, 1)
	v1 := atLeast(1e6)
	eventually(t, 30*time.Second, func() bool { return v1() == products },
		func() string { return fmt.Sprintf("A applied the first wave to %d of %d products", v1(), products) })

	var b *process
	for freeze := range freezes {
		stale, last := 2*freeze+2, 2*freeze+3 // the wave A is frozen in, the wave B ends with
		wave(stale, rounds)
		began, done := atLeast(stale*1e6), atLeast(stale*1e6+rounds-1)
		eventually(t, 30*time.Second, func() bool { return began() > 0 },
			func() string { return fmt.Sprintf("nothing of wave %d was applied", stale) })
		a.signal(t, syscall.SIGSTOP)
		frozenAt := time.Now()
		t.Logf("froze A with %d of %d products short of their last update of wave %d", products-done(), products, stale)
		if b == nil {
			b = startProcess(t, cfg, consumerDSN, session)
		}
		wave(last, 1)
		all := atLeast(last * 1e6)
		eventually(t, 30*time.Second, func() bool { return all() == products },
			func() string { return fmt.Sprintf("B applied wave %d to %d of %d products", last, all(), products) })
		t.Logf("B applied wave %d to every product %s after A was frozen", last, time.Since(frozenAt).Round(100*time.Millisecond))

		a.signal(t, syscall.SIGCONT) // A tries its fetched batches, learns it left, rejoins
		eventually(t, 20*time.Second, func() bool { return members(cfg.Kafka.ConsumerGroup) == 2 },
			func() string { return "A did not rejoin the group after it thawed" })
		wrong := 0
		for c, got := range inventories(t, db) {
			if got != int64(last*1e6) {
				if wrong < 5 {
					t.Errorf("product %s has inventory %d after A thawed, want %d (its last update)", c, got, last*1e6)
				}
				wrong++
			}
		}
		if wrong > 0 {
			t.Fatalf("%d of %d products are not at their last update after A thawed", wrong, products)
		}
	}
	a.signal(t, syscall.SIGTERM)
	b.signal(t, syscall.SIGTERM)
	if err := a.wait(t, 30*time.Second); err != nil {
		t.Errorf("A did not exit cleanly on SIGTERM: %v", err)
	}
	if err := b.wait(t, 30*time.Second); err != nil {
		t.Errorf("B did not exit cleanly on SIGTERM: %v", err)
	}
	if lag := consumertest.GroupLag(t, brokers, cfg.Kafka.ConsumerGroup, topic); lag != 0 {
		t.Errorf("the group's lag is %d after both members stopped, want 0", lag)
	}
	// Every invalid message is dead-lettered and nothing else is. A thawed member checks the
	// stored offset before it writes letters, so it writes none of its successor's again;
	// what can remain is the letters of the one batch (2 messages) it was frozen between
	// that check and the write.
	records := consumertest.ReadTopic(t, brokers, dlq, invalid, 30*time.Second)
	letters := map[string]int{}
	for _, r := range records {
		d, err := consumer.ParseDeadLetter(consumer.HeadersFromSarama(r.Headers))
		if err != nil || d.ErrorClass != consumer.ClassValidationFailed {
			t.Errorf("dead letter %d: %+v (%v), want ValidationFailed", r.Offset, d, err)
		}
		letters[fmt.Sprintf("%d/%d", d.OriginalPartition, d.OriginalOffset)]++
	}
	duplicates := len(records) - len(letters)
	t.Logf("dead letters: %d records for %d invalid messages, %d duplicates", len(records), invalid, duplicates)
	if len(letters) != invalid {
		t.Errorf("%d invalid messages have a dead letter, want %d", len(letters), invalid)
	}
	if limit := freezes * small.Batch.MaxMessages; duplicates > limit {
		t.Errorf("%d dead letters written twice, want at most %d (the batch in flight at each freeze)", duplicates, limit)
	}
}

// TestKillNineRepeatedlyAppliesEveryUpdateExactlyOnce kills a consumer process with
// SIGKILL at random points of a mixed stream, restarting it each time: 10 times in 30,000
// messages on kfake and SQLite, 20 times in 40,000 on Apache Kafka and PostgreSQL. A
// trigger records every update of a products row: each valid message must be applied
// exactly once (none twice, none lost), the last per product wins, and every invalid
// message is dead-lettered.
func TestKillNineRepeatedlyAppliesEveryUpdateExactlyOnce(t *testing.T) {
	t.Parallel()
	t.Run("kfake and SQLite", func(t *testing.T) {
		t.Parallel()
		topic := consumertest.UniqueName("kill9")
		dlq := topic + ".dlq"
		// The killed member's place frees up when its session expires: make that 1s.
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(killPartitions, topic, dlq),
			kfake.GroupMinSessionTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		killNine(t, c.ListenAddrs(), topic, dlq, consumer.DriverSQLite, consumertest.SQLiteDSN(t),
			30000, 10, envConsumerSessionTimeout+"=1s")
	})
	t.Run("Apache Kafka and PostgreSQL", func(t *testing.T) {
		t.Parallel()
		dsn := consumertest.PostgresDSN(t)
		topic := consumertest.UniqueName("kill9")
		dlq := topic + ".dlq"
		brokers := consumertest.RealKafka(t, killPartitions, topic, dlq)
		// Apache Kafka's shortest session is 6s; a static member takes the killed one's
		// place at once instead.
		killNine(t, brokers, topic, dlq, consumer.DriverPostgres, dsn,
			40000, 20, envConsumerInstanceID+"="+consumertest.UniqueName("chaos"))
	})
}

const killPartitions = 4

// auditTrigger records (code, inventory) of every committed update of a products row.
var auditTrigger = map[string][]string{
	consumer.DriverSQLite: {
		`CREATE TABLE audit (code TEXT NOT NULL, inventory INTEGER NOT NULL)`,
		`CREATE TRIGGER audit_update AFTER UPDATE OF inventory ON products
		 BEGIN INSERT INTO audit (code, inventory) VALUES (NEW.code, NEW.inventory); END`,
	},
	consumer.DriverPostgres: {
		`CREATE TABLE audit (code text NOT NULL, inventory bigint NOT NULL)`,
		`CREATE FUNCTION audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN INSERT INTO audit (code, inventory) VALUES (NEW.code, NEW.inventory); RETURN NULL; END $$`,
		`CREATE TRIGGER audit_update AFTER UPDATE ON products FOR EACH ROW EXECUTE FUNCTION audit_update()`,
	},
}

func killNine(t *testing.T, brokers []string, topic, dlq, driver, dsn string, messages, kills int, env ...string) {
	const perPart = 250 // products per partition, updated round-robin
	// The handler applies one change per product and batch (the last wins), so the
	// trigger counts messages only if no batch holds a product twice: a batch is at most
	// 200 consecutive messages of a partition, and a product comes again 250 later.
	const maxBatch = 200
	var codes []string
	for p := range killPartitions {
		for s := range perPart {
			codes = append(codes, fmt.Sprintf("K%d-%03d", p, s))
		}
	}
	db := catalogue(t, driver, dsn, codes)
	for _, stmt := range auditTrigger[driver] {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}

	type applied struct {
		code string
		n    int64
	}
	var msgs []*sarama.ProducerMessage
	want := map[string]int64{}
	for i := range messages {
		part := int32(i % killPartitions)
		code := fmt.Sprintf("K%d-%03d", part, (i/killPartitions)%perPart)
		n := int64(i + 1)
		v := update(code, n)
		valid := i%50 != 17 // 2% invalid, of four kinds
		if !valid {
			switch (i / 50) % 4 {
			case 0:
				v = update(code, -n)
			case 1:
				v = update(fmt.Sprintf("NO-SUCH-%d", i), n)
			case 2:
				v = "this is no good"
			case 3:
				v = fmt.Sprintf(`{"product_code": %q, "inventory_count": %d, "colour": "red"}`, code, n)
			}
		} else {
			want[code] = n
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part, Key: sarama.StringEncoder(code),
			Value: sarama.StringEncoder(v), Metadata: applied{code, n}})
		if !valid {
			msgs[len(msgs)-1].Metadata = nil
		}
	}
	send(t, consumertest.Producer(t, brokers), msgs)
	valid := map[applied]bool{}
	validAt, invalidAt := map[string]bool{}, map[string]bool{}
	for _, m := range msgs {
		at := fmt.Sprintf("%d/%d", m.Partition, m.Offset)
		if a, ok := m.Metadata.(applied); ok {
			valid[a] = true
			validAt[at] = true
		} else {
			invalidAt[at] = true
		}
	}

	count := func() int {
		var n int64
		if err := db.Raw(`SELECT count(*) FROM audit`).Scan(&n).Error; err != nil {
			t.Fatalf("count applications: %v", err)
		}
		return int(n)
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, seed))
	var targets []int
	for range kills {
		// Between 5% and 75%: a restarted consumer catches up in bursts of thousands, and
		// the last kill must still land before the stream ends.
		targets = append(targets, len(valid)/20+rng.IntN(len(valid)*70/100))
	}
	slices.Sort(targets)
	t.Logf("seed %d: kill -9 after about %v applications of %d", seed, targets, len(valid))

	cfg := consumertest.Config(brokers, topic, dlq, driver, "")
	cfg.Batch.MaxMessages = maxBatch
	start := time.Now()
	var at []int
	for _, target := range targets {
		proc := startProcess(t, cfg, dsn, env...)
		before := count()
		target = max(target, before+1)
		eventually(t, 20*time.Second, func() bool { return count() >= target },
			func() string { return fmt.Sprintf("%d of %d applied, waiting for %d", count(), len(valid), target) })
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		proc.signal(t, syscall.SIGKILL)
		_ = proc.wait(t, 10*time.Second)
		at = append(at, count())
	}
	t.Logf("killed at %v applications in %s", at, time.Since(start).Round(100*time.Millisecond))
	if at[len(at)-1] >= len(valid) {
		t.Fatalf("the stream was done (%d applications) before the last kill; the test needs more messages", at[len(at)-1])
	}

	last := startProcess(t, cfg, dsn, env...)
	eventually(t, 30*time.Second, func() bool { return count() >= len(valid) && len(deadLetters(t, brokers, dlq, 0, 0)) >= len(invalidAt) },
		func() string {
			return fmt.Sprintf("%d applications of %d valid messages, %d of %d invalid dead-lettered",
				count(), len(valid), len(deadLetters(t, brokers, dlq, 0, 0)), len(invalidAt))
		})
	eventually(t, 15*time.Second, func() bool { return consumertest.GroupLag(t, brokers, cfg.Kafka.ConsumerGroup, topic) == 0 },
		func() string { return "the group's lag did not reach 0" })
	last.signal(t, syscall.SIGTERM)
	if err := last.wait(t, 30*time.Second); err != nil {
		t.Errorf("the last consumer process did not exit cleanly on SIGTERM: %v", err)
	}

	var rows []struct {
		Code      string
		Inventory int64
		N         int
	}
	if err := db.Raw(`SELECT code, inventory, count(*) AS n FROM audit GROUP BY code, inventory`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	twice, foreign, total := 0, 0, 0
	seen := map[applied]bool{}
	for _, r := range rows {
		a := applied{r.Code, r.Inventory}
		total += r.N
		seen[a] = true
		if r.N > 1 {
			twice += r.N - 1
		}
		if !valid[a] {
			foreign++
		}
	}
	lost := 0
	for a := range valid {
		if !seen[a] {
			lost++
		}
	}
	t.Logf("%d applications of %d valid messages: %d applied twice, %d lost, %d not from a valid message", total, len(valid), twice, lost, foreign)
	if total != len(valid) || twice != 0 || lost != 0 || foreign != 0 {
		t.Errorf("exactly once is broken: %d applications of %d valid messages, %d applied again, %d lost, %d not from a valid message",
			total, len(valid), twice, lost, foreign)
	}
	got := inventories(t, db)
	wrong := 0
	for c, w := range want {
		if got[c] != w {
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d products are not at their last update", wrong, len(want))
	}
	dl := deadLetters(t, brokers, dlq, 0, 0)
	records, missing, misplaced := 0, 0, 0
	for at, n := range dl {
		records += n
		if validAt[at] || !invalidAt[at] {
			misplaced++
		}
	}
	for at := range invalidAt {
		if dl[at] == 0 {
			missing++
		}
	}
	t.Logf("dead letters: %d records for %d invalid messages, %d duplicates (a kill between a dead letter's acknowledgement and the commit)",
		records, len(invalidAt), records-len(dl))
	if missing > 0 || misplaced > 0 {
		t.Errorf("%d invalid messages are not in the dead-letter topic; %d dead letters name a valid or unknown message", missing, misplaced)
	}
}

// hostile is one case of TestOneHostileMessageInABatchIsTheOnlyOneDeadLettered: a
// message and the rows it must leave alone.
type hostile struct {
	name string
	// value is the message; v is the case's victim code, a product no neighbour updates.
	value func(v string) string
	// extra are more products of the case (code suffixes of v), also at -1.
	extra []string
}

var hostiles = []hostile{
	{name: "a NUL inside the product code", value: func(v string) string { return update(v[:2]+"\x00"+v[2:], 777) }},
	{name: "a trailing NUL after an existing product code", value: func(v string) string { return update(v+"\x00", 777) }},
	{name: "a NUL in the code and a negative count", value: func(v string) string { return update(v[:2]+"\x00"+v[2:], -777) }},
	{name: "a control character U+0001 in the product code", value: func(v string) string { return update(v+"\u0001", 777) }},
	{name: "a 64 KiB product code", value: func(v string) string { return update(v+strings.Repeat("x", 64<<10-len(v)), 777) }},
	{name: "a count of 2^63", value: func(v string) string {
		return fmt.Sprintf(`{"product_code": %q, "inventory_count": 9223372036854775808}`, v)
	}},
	{name: "a payload that is JSON null", value: func(string) string { return "null" }},
	{name: "an unknown product", value: func(v string) string { return update(v+"-NO-SUCH", 777) }},
	{name: "a count the database refuses", value: func(v string) string { return update(v, 5000) }},
	{name: "invalid UTF-8 bytes in the product code", value: func(v string) string { return `{"product_code": "` + v + "\xff\xfe" + `", "inventory_count": 777}` },
		extra: []string{"\uFFFD\uFFFD"}}, // a decoder that replaced the bytes would update this row
	{name: "duplicate product_code keys", value: func(v string) string {
		return fmt.Sprintf(`{"product_code": %q, "inventory_count": 555, "product_code": %q}`, v, v+"-b")
	}, extra: []string{"-b"}},
}

// TestOneHostileMessageInABatchIsTheOnlyOneDeadLettered: each case is one batch of 500
// valid updates with one hostile message in the middle, on a partition of its own. The
// hostile message alone is dead-lettered and changes no row; every neighbour is applied.
func TestOneHostileMessageInABatchIsTheOnlyOneDeadLettered(t *testing.T) {
	t.Parallel()
	for _, d := range consumertest.Databases {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			oneHostile(t, d, d.DSN(t))
		})
	}
}

func oneHostile(t *testing.T, d consumertest.Database, dsn string) {
	driver := d.Driver
	const neighbours = 500
	partitions := int32(len(hostiles))
	topic := consumertest.UniqueName("hostile")
	dlq := topic + ".dlq"
	brokers := consumertest.Kfake(t, partitions, topic, dlq)
	victim := func(k int) string { return fmt.Sprintf("V%02d", k) }
	neighbour := func(k, j int) string { return fmt.Sprintf("C%02d-%03d", k, j) }
	var codes []string
	for k, h := range hostiles {
		codes = append(codes, victim(k))
		for _, s := range h.extra {
			codes = append(codes, victim(k)+s)
		}
		for j := range neighbours {
			codes = append(codes, neighbour(k, j))
		}
	}
	db := catalogue(t, driver, dsn, codes)
	if err := db.Exec(d.RefuseInventoryAbove1000).Error; err != nil {
		t.Fatal(err)
	}

	var msgs []*sarama.ProducerMessage
	for k, h := range hostiles {
		for j := range neighbours + 1 {
			var v string
			switch {
			case j < neighbours/2:
				v = update(neighbour(k, j), int64(j+1))
			case j == neighbours/2:
				v = h.value(victim(k))
			default:
				v = update(neighbour(k, j-1), int64(j))
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(k), Value: sarama.StringEncoder(v)})
		}
	}
	send(t, consumertest.Producer(t, brokers), msgs)
	hostileAt := map[string]int{} // "partition/offset" of case k's hostile message
	for i, m := range msgs {
		if i%(neighbours+1) == neighbours/2 {
			hostileAt[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = int(m.Partition)
		}
	}

	cfg := consumertest.Config(brokers, topic, dlq, driver, "")
	cfg.Batch.MaxMessages = neighbours + 1
	cfg.Batch.MaxWait = consumer.Duration{Duration: time.Second}
	start := time.Now()
	proc := startProcess(t, cfg, dsn)
	stored := func() int {
		var rows []struct{ LastOffset int64 }
		if err := db.Raw(`SELECT last_offset FROM kafkasub_offsets WHERE consumer_group = ?`, cfg.Kafka.ConsumerGroup).Scan(&rows).Error; err != nil {
			return 0 // the consumer has not created the table yet
		}
		done := 0
		for _, r := range rows {
			if r.LastOffset == neighbours {
				done++
			}
		}
		return done
	}
	eventually(t, 30*time.Second, func() bool { return stored() == len(hostiles) },
		func() string { return fmt.Sprintf("%d of %d cases came to an outcome", stored(), len(hostiles)) })
	t.Logf("all %d batches came to an outcome in %s", len(hostiles), time.Since(start).Round(100*time.Millisecond))
	proc.signal(t, syscall.SIGTERM)
	if err := proc.wait(t, 30*time.Second); err != nil {
		t.Errorf("the consumer process did not exit cleanly on SIGTERM: %v", err)
	}

	dl := deadLetters(t, brokers, dlq, len(hostiles), 5*time.Second)
	extra := 0
	for at, n := range dl {
		if _, ok := hostileAt[at]; !ok || n != 1 {
			if extra < 5 {
				t.Errorf("dead letter for %s (%d records): only each case's hostile message, once, may be dead-lettered", at, n)
			}
			extra++
		}
	}
	if extra > 0 {
		t.Errorf("%d dead letters name a message that is not its case's hostile one, or repeat it", extra)
	}
	got := inventories(t, db)
	for at, k := range hostileAt {
		h := hostiles[k]
		t.Run(h.name, func(t *testing.T) {
			for j := range neighbours {
				if c := neighbour(k, j); got[c] != int64(j+1) {
					t.Errorf("neighbour %s has inventory %d, want %d", c, got[c], j+1)
				}
			}
			own := map[string]bool{}
			for _, s := range append([]string{""}, h.extra...) {
				own[victim(k)+s] = got[victim(k)+s] != -1
			}
			changed := 0
			for _, ch := range own {
				if ch {
					changed++
				}
			}
			switch {
			case dl[at] == 1 && changed == 0:
			case dl[at] == 1:
				t.Errorf("dead-lettered and also applied: rows %v changed", own)
			default:
				t.Errorf("not dead-lettered (rows changed: %v)", own)
			}
		})
	}
}
