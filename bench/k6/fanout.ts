/**
 * k6 fan-out: VUS subscribers on one channel (`bench:fanout`), each checking its stream (offsets contiguous:
 * gaps and repeats are counted), acking cumulatively, and recording delivery latency from the event's SCHEDULED
 * publish time (`data.t`, stamped by the bench server's paced publisher) to receipt. k6 must run on the server's
 * machine for that clock to be shared.
 *
 *   node --import tsx bench/server.ts --standalone --port 4000 --publish-rate 100   # publishes 100 ticks/s
 *   k6 run -e VUS=1000 -e DURATION=60s bench/k6/fanout.ts
 *
 * Thresholds: p99 latency ≤ 50 ms, no lost or duplicated event, no error frame.
 */
import { check } from "k6"
import { Counter, Trend } from "k6/metrics"
import type { Options } from "k6/options"
import { clearInterval, setInterval, setTimeout } from "k6/timers"
import { ack, connect, type Frame, frames, pong, subscribe } from "./tidings.ts"

const vus = Number(__ENV.VUS ?? 100)
const duration = __ENV.DURATION ?? "30s"
const channel = __ENV.CHANNEL ?? "bench:fanout"

export const options: Options = {
  scenarios: {
    subscribers: { executor: "per-vu-iterations", vus, iterations: 1, maxDuration: "10m" }
  },
  thresholds: {
    tidings_delivery_ms: ["p(99)<=50"],
    tidings_lost: ["count==0"],
    tidings_duplicated: ["count==0"],
    tidings_errors: ["count==0"]
  }
}

const latency = new Trend("tidings_delivery_ms", true)
const deliveries = new Counter("tidings_deliveries")
const lost = new Counter("tidings_lost")
const duplicated = new Counter("tidings_duplicated")
const errors = new Counter("tidings_errors")

const seconds = (d: string): number => {
  const m = /^(\d+)(ms|s|m)$/.exec(d)
  if (!m) return 30
  const n = Number(m[1])
  return m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n
}

export default function (): void {
  const ws = connect(`k6-${__VU}`)
  let epoch = ""
  let offset = -1
  let unacked = 0

  const onFrame = (frame: Frame, now: number) => {
    if (frame.type === "event") {
      const at = frame.offset as number
      if (offset >= 0 && at <= offset) {
        duplicated.add(1)
        return
      }
      if (offset >= 0 && at > offset + 1) lost.add(at - offset - 1)
      offset = at
      epoch = frame.epoch as string
      unacked++
      deliveries.add(1)
      const data = frame.data as { t?: number }
      if (typeof data.t === "number") latency.add(now - data.t)
    } else if (frame.type === "subscribed") {
      const position = frame.position as { epoch: string; offset: number }
      epoch = position.epoch
      if (offset < 0) offset = position.offset
    } else if (frame.type === "ping") ws.send(pong())
    else if (frame.type === "error" || frame.type === "reset") errors.add(1)
  }

  ws.onopen = () => ws.send(subscribe(channel))
  ws.onmessage = (event) => {
    const now = Date.now()
    for (const frame of frames(event?.data)) onFrame(frame, now)
    if (unacked >= 100) {
      ws.send(ack(channel, epoch, offset))
      unacked = 0
    }
  }
  ws.onerror = () => errors.add(1)
  const acks = setInterval(() => {
    if (unacked > 0 && epoch !== "") {
      ws.send(ack(channel, epoch, offset))
      unacked = 0
    }
  }, 250)
  setTimeout(() => {
    clearInterval(acks)
    check(offset, { "received events": (o) => o > 0 })
    ws.close()
  }, seconds(duration) * 1000)
}
