#!/usr/bin/env bash
# A single-process Apache Kafka 4.x broker in KRaft mode, from the official jars on Maven
# Central (fetched once by Maven into .local/kafka/libs). Usage: scripts/kafka.sh start|stop
# STATE_DIR (default .local) holds its data and logs; the jars stay in .local/kafka/libs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
KAFKA_PORT="${KAFKA_PORT:-29092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-29093}"
dir="${STATE_DIR:-$root/.local}/kafka"
libs="$root/.local/kafka/libs"
conf="$dir/server.properties"
pidfile="$dir/kafka.pid"

fetch() {
  if [ ! -f "$libs/.complete" ]; then
    echo "fetching Kafka jars from Maven Central (once)" >&2
    mvn -q -B -f "$root/infra/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime >&2
    touch "$libs/.complete"
  fi
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-start}" in
  start)
    fetch
    mkdir -p "$dir/data"
    if running && [ "$(cat "$dir/ports" 2>/dev/null)" = "$KAFKA_PORT $CONTROLLER_PORT" ]; then
      echo "kafka already running on 127.0.0.1:$KAFKA_PORT"; exit 0
    fi
    if running; then echo "kafka is running on other ports; restarting it"; "$0" stop; fi
    # the controller's address is written into the metadata log when it is formatted: a throwaway broker
    # formatted for other ports (an older checkout) starts afresh
    if [ -f "$dir/data/meta.properties" ] && [ "$(cat "$dir/ports" 2>/dev/null)" != "$KAFKA_PORT $CONTROLLER_PORT" ]; then
      rm -rf "$dir/data"; mkdir -p "$dir/data"
    fi
    echo "$KAFKA_PORT $CONTROLLER_PORT" > "$dir/ports"
    cat > "$conf" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
CONF
    cat > "$dir/log4j2.yaml" <<'CONF'
Configuration:
  Appenders:
    File:
      name: file
      fileName: "${sys:kafka.logs.dir}/server.log"
      PatternLayout: { pattern: "[%d] %p %m (%c)%n" }
  Loggers:
    Root: { level: WARN, AppenderRef: [{ ref: file }] }
    Logger: [{ name: kafka.server.KafkaServer, level: INFO }]
CONF
    cp="$libs/*"
    jvm=(java -Xms256m -Xmx512m -Dkafka.logs.dir="$dir" -Dlog4j2.configurationFile="$dir/log4j2.yaml" -cp "$cp")
    if [ ! -f "$dir/data/meta.properties" ]; then
      "${jvm[@]}" kafka.tools.StorageTool format --standalone -t "$(cat /proc/sys/kernel/random/uuid | tr -d - | head -c 22)" -c "$conf" >/dev/null
    fi
    nohup "${jvm[@]}" kafka.Kafka "$conf" >"$dir/stdout.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 120); do
      if (exec 3<>/dev/tcp/127.0.0.1/"$KAFKA_PORT") 2>/dev/null; then echo "kafka started on 127.0.0.1:$KAFKA_PORT"; exit 0; fi
      running || { echo "kafka died; see $dir/stdout.log" >&2; tail -20 "$dir/stdout.log" >&2; exit 1; }
      sleep 0.5
    done
    echo "kafka did not open its port in 60 s" >&2; exit 1
    ;;
  stop)
    if running; then
      pid=$(cat "$pidfile"); kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
