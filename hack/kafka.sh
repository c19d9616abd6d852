#!/usr/bin/env bash
# Runs a single-node Apache Kafka broker (KRaft mode) on 127.0.0.1 for tests.
#
#   hack/kafka.sh start    resolve the jars (once, cached), start, wait, print host:port
#   hack/kafka.sh stop     stop exactly the broker this script started (pid file)
#   hack/kafka.sh status   say whether it runs and where
#
# The jars come from Maven Central with mvn and are cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/kafkasub/kafka/<version>. The broker's data, pid file and
# log live in ${KAFKASUB_KAFKA_DIR:-${TMPDIR:-/tmp}/kafkasub-kafka}. Needs Java 17+ and mvn.
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
SCALA_VERSION=2.13
PORT=${KAFKASUB_KAFKA_PORT:-39092}
CONTROLLER_PORT=${KAFKASUB_KAFKA_CONTROLLER_PORT:-39093}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kafkasub/kafka/${KAFKA_VERSION}"
run="${KAFKASUB_KAFKA_DIR:-${TMPDIR:-/tmp}/kafkasub-kafka}"
pidfile="$run/kafka.pid"
logfile="$run/kafka.log"

log() { echo "kafka: $*" >&2; }

resolve_jars() {
  [ -f "$cache/.complete" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; exit 1; }
  command -v java >/dev/null || { log "java is not installed (apt-get install openjdk-17-jre-headless)"; exit 1; }
  log "resolving Apache Kafka ${KAFKA_VERSION} jars from Maven Central (once; cached in $cache)"
  local work
  work=$(mktemp -d)
  cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.kafkasub</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>2.0.17</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
POM
  if ! mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1; then
    log "mvn could not resolve the jars:"
    cat "$work/mvn.log" >&2
    rm -rf "$work"
    exit 1
  fi
  mkdir -p "$(dirname "$cache")"
  rm -rf "$cache.tmp"
  mv "$work/libs" "$cache.tmp"
  touch "$cache.tmp/.complete"
  rm -rf "$cache"
  mv "$cache.tmp" "$cache"
  rm -rf "$work"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

start() {
  if running; then
    log "already running (pid $(cat "$pidfile"))"
    echo "127.0.0.1:$PORT"
    return 0
  fi
  resolve_jars
  rm -rf "$run"
  mkdir -p "$run/data"
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$run/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  cat > "$run/log4j2.properties" <<'L4J'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
L4J
  local cp="$cache/*"
  local jvm=(-Xms256m -Xmx512m -XX:+UseG1GC "-Dlog4j2.configurationFile=$run/log4j2.properties")
  java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format --standalone \
    -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
    -c "$run/server.properties" >"$logfile" 2>&1
  nohup java "${jvm[@]}" -cp "$cp" kafka.Kafka "$run/server.properties" >>"$logfile" 2>&1 &
  echo $! > "$pidfile"
  log "started pid $(cat "$pidfile"), log $logfile"
  for _ in $(seq 1 120); do
    if answering && grep -q 'Kafka Server started\|\[KafkaRaftServer nodeId=1\] Kafka Server started' "$logfile"; then
      log "answering on 127.0.0.1:$PORT"
      echo "127.0.0.1:$PORT"
      return 0
    fi
    running || { log "broker exited; last lines of $logfile:"; tail -20 "$logfile" >&2; exit 1; }
    sleep 1
  done
  log "broker did not answer within 120s; see $logfile"
  stop
  exit 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped pid $pid"
  else
    log "not running"
  fi
  rm -f "$pidfile"
}

status() {
  if running; then
    echo "running: pid $(cat "$pidfile"), 127.0.0.1:$PORT, log $logfile"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
