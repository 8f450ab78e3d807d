/**
 * k6 command round trip: VUS connections each send an `echo` command every INTERVAL_MS and record the time to
 * its reply (k6's clock only: the script stamps and reads). Against bench/server.ts (its protocol has `echo`):
 *
 *   node --import tsx bench/server.ts --standalone --port 4000 --publish-rate 0
 *   k6 run -e VUS=100 -e INTERVAL_MS=100 -e DURATION=60s bench/k6/command-rtt.ts
 *
 * Thresholds: p99 round trip ≤ 50 ms, every command answered, no error.
 */
import { check } from "k6"
import { Counter, Trend } from "k6/metrics"
import type { Options } from "k6/options"
import { clearInterval, setInterval, setTimeout } from "k6/timers"
import { command, connect, frames, pong } from "./tidings.ts"

const vus = Number(__ENV.VUS ?? 50)
const intervalMs = Number(__ENV.INTERVAL_MS ?? 100)
const durationMs = Number(__ENV.DURATION_MS ?? 30_000)

export const options: Options = {
  scenarios: {
    commanders: { executor: "per-vu-iterations", vus, iterations: 1, maxDuration: "10m" }
  },
  thresholds: {
    tidings_command_rtt_ms: ["p(99)<=50"],
    tidings_command_errors: ["count==0"],
    tidings_command_unanswered: ["count==0"]
  }
}

const rtt = new Trend("tidings_command_rtt_ms", true)
const replies = new Counter("tidings_command_replies")
const commandErrors = new Counter("tidings_command_errors")
const unanswered = new Counter("tidings_command_unanswered")

export default function (): void {
  const ws = connect(`k6-cmd-${__VU}`)
  const sentAt = new Map<string, number>()
  let next = 0
  let timer: ReturnType<typeof setInterval> | undefined

  ws.onopen = () => {
    timer = setInterval(() => {
      const id = `${__VU}-${next++}`
      sentAt.set(id, Date.now())
      ws.send(command(id, "echo", { t: Date.now(), p: "k6" }))
    }, intervalMs)
  }
  ws.onmessage = (event) => {
    const now = Date.now()
    for (const frame of frames(event?.data)) {
      if (frame.type === "reply") {
        const id = frame.id as string
        const at = sentAt.get(id)
        sentAt.delete(id)
        if (at !== undefined) rtt.add(now - at)
        if (frame.ok === true) replies.add(1)
        else commandErrors.add(1)
      } else if (frame.type === "error") commandErrors.add(1)
      else if (frame.type === "ping") ws.send(pong())
    }
  }
  ws.onerror = () => commandErrors.add(1)
  setTimeout(() => {
    if (timer !== undefined) clearInterval(timer)
    // leave a moment for the last replies
    setTimeout(() => {
      unanswered.add(sentAt.size)
      check(next, { "sent commands": (n) => n > 0 })
      ws.close()
    }, 1000)
  }, durationMs)
}
