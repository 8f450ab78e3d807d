#!/bin/sh
# An automation engine of the usual kind, unchanged: it reports a client's progress by publishing JSON to the Redis
# pub/sub channel app:out:<clientId>. docs/bridges.md moves it behind tidings with a redis-pubsub bridge.
# Usage: automation-publisher.sh <redis port> <clientId> <steps>
port=${1:-6379}
client=${2:-c1}
steps=${3:-3}
i=1
while [ "$i" -le "$steps" ]; do
  redis-cli -p "$port" PUBLISH "app:out:$client" "{\"type\":\"said\",\"data\":{\"from\":\"engine\",\"body\":\"step $i\"}}" >/dev/null
  i=$((i + 1))
done
redis-cli -p "$port" PUBLISH "app:out:$client" "{\"type\":\"tick\",\"data\":{\"n\":$steps}}" >/dev/null
