/**
 * One load-generator process: holds a share of the clients (any kind) and does what the orchestrator asks —
 * open them (measuring setup), start and settle steps (waiting until every client got what was published, then
 * reporting its histogram and continuity counts), report progress for unpaced runs, send paced commands, drop
 * and resume (reconnect storm), verify channel continuity. It only ever connects to the URL it is given (the
 * orchestrator passes 127.0.0.1) and exits with the orchestrator or at its deadline.
 */
import * as Histogram from "../histogram.ts"
import { emit, flag, serve } from "../ipc.ts"
import { fdLimit } from "../procstat.ts"
import { benchToken, fanoutChannel, nowMs, padFor, personalChannelOf, userOf } from "../protocol.ts"
import { type BenchClient, type ClientEnv, type ClientKind, within } from "./BenchClient.ts"
import { Recorder } from "./Recorder.ts"
import { SocketIoClient } from "./SocketIoClient.ts"
import { SseClient } from "./SseClient.ts"
import { sourceAddressOf } from "./sourceAddress.ts"
import { type Recovery, TidingsClient } from "./TidingsClient.ts"
import { WsClient } from "./WsClient.ts"

const recorder = new Recorder()
const clients: Array<BenchClient> = []
const closes = new Map<number, number>()
const problems = new Map<string, number>()
const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)

const env: ClientEnv = {
  recorder,
  unexpectedClose: (code) => closes.set(code, (closes.get(code) ?? 0) + 1),
  problem: (what) => count(problems, what),
  sourceAddress: sourceAddressOf
}

const tidings = (): Array<TidingsClient> => clients.filter((c): c is TidingsClient => c instanceof TidingsClient)

// cumulative acks about `--ack-ms` after the first unacked event, spread ±20% per client like the real client's
// (1,000 events or 1,000 ms ± 20%); 0 = never
const ackMs = Number(flag("ack-ms", "1000"))
if (ackMs > 0) {
  /** Each client's own delay, fixed per index: the spread of the real client's jittered timer. */
  const delayOf = (index: number) => ackMs * (0.8 + 0.4 * ((index * 0.618034) % 1))
  setInterval(
    () => {
      const now = nowMs()
      for (const c of tidings()) if (c.ackDue(now, delayOf(c.index))) c.ack()
    },
    Math.max(10, ackMs / 20)
  ).unref()
}

const sign = (index: number) => benchToken(userOf(index))

/** Runs `task` over `items` with at most `concurrency` in flight. */
const pool = async <T>(items: ReadonlyArray<T>, concurrency: number, task: (item: T) => Promise<void>) => {
  let next = 0
  const runners = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await task(items[next++]!)
  })
  await Promise.all(runners)
}

interface OpenArgs {
  readonly kind: ClientKind
  readonly url: string
  readonly from: number
  readonly count: number
  readonly concurrency: number
  /** tidings and sse: which channel each client subscribes to (reads). */
  readonly channel: "fanout" | "personal" | "none"
  readonly timeoutMs: number
}

const open = async (args: OpenArgs) => {
  const made: Array<BenchClient> = []
  for (let k = 0; k < args.count; k++) {
    const index = args.from + k
    if (args.kind === "tidings") {
      const channel =
        args.channel === "fanout" ? fanoutChannel : args.channel === "personal" ? personalChannelOf(index) : undefined
      made.push(new TidingsClient(index, args.url, await sign(index), channel, env, ackMs > 0 ? 1000 : 0))
    } else if (args.kind === "sse") {
      const channel = args.channel === "personal" ? personalChannelOf(index) : fanoutChannel
      made.push(new SseClient(index, args.url, await sign(index), channel, env))
    } else if (args.kind === "ws") made.push(new WsClient(index, args.url, env))
    else made.push(new SocketIoClient(index, args.url, env))
  }
  const errors = new Map<string, number>()
  const connected: Array<BenchClient> = []
  const started = nowMs()
  await pool(made, args.concurrency, async (client) => {
    try {
      await within(client.connect(), args.timeoutMs, "connect")
      connected.push(client)
    } catch (error) {
      count(errors, (error as Error).message.slice(0, 80))
      client.terminate()
    }
  })
  const ms = nowMs() - started
  // subscribing is measured apart from connection setup (the baselines have nothing to subscribe to)
  let subscribed = 0
  const subscribeStarted = nowMs()
  await pool(connected, args.concurrency, async (client) => {
    try {
      if (client.subscribe && args.channel !== "none") await within(client.subscribe(), args.timeoutMs, "subscribe")
      clients.push(client)
      subscribed++
    } catch (error) {
      count(errors, (error as Error).message.slice(0, 80))
      client.terminate()
    }
  })
  return {
    opened: subscribed,
    failed: args.count - subscribed,
    ms,
    subscribeMs: nowMs() - subscribeStarted,
    errors: Object.fromEntries(errors)
  }
}

/** What client `index` should receive of a step: all of it (broadcast) or its round-robin share (unicast). */
const expectedFor = (index: number, published: number, targets: number) =>
  targets <= 0 ? published : index < published ? Math.floor((published - 1 - index) / targets) + 1 : 0

const received = (client: BenchClient, step: number) => (client.stream.step === step ? client.stream.count : 0)

const settle = async (args: { step: number; published: number; targets: number; timeoutMs: number }) => {
  const deadline = nowMs() + args.timeoutMs
  const behind = () =>
    clients.reduce(
      (sum, c) =>
        c.isOpen ? sum + Math.max(0, expectedFor(c.index, args.published, args.targets) - received(c, args.step)) : sum,
      0
    )
  let missing = behind()
  while (missing > 0 && nowMs() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    missing = behind()
  }
  // clients that closed during the step missed everything they did not receive
  for (const c of clients) {
    if (!c.isOpen) missing += Math.max(0, expectedFor(c.index, args.published, args.targets) - received(c, args.step))
  }
  return { ...recorder.report(missing), clients: clients.length, open: clients.filter((c) => c.isOpen).length }
}

let progressTimer: ReturnType<typeof setInterval> | undefined
const progress = (args: { step: number; on: boolean }) => {
  if (progressTimer) clearInterval(progressTimer)
  progressTimer = undefined
  if (!args.on) return
  progressTimer = setInterval(() => {
    let min = Number.POSITIVE_INFINITY
    for (const c of clients) if (c.isOpen) min = Math.min(min, received(c, args.step))
    emit("progress", { received: Number.isFinite(min) ? min : 0 })
  }, 5)
}

/** Sends echo commands at `rate` per second spread over this worker's clients, each stamped with its schedule. */
const commands = async (args: {
  step: number
  rate: number
  durationMs: number
  warmupMs: number
  payloadBytes: number
  drainMs: number
}) => {
  const senders = tidings().filter((c) => c.isOpen)
  if (senders.length === 0) throw new Error("no open tidings clients to send commands")
  recorder.begin(args.step)
  const pad = padFor(args.payloadBytes)
  const interval = 1000 / args.rate
  const total = Math.max(1, Math.round((args.rate * args.durationMs) / 1000))
  const start = nowMs() + 20
  recorder.commandsMeasuredFrom = start + args.warmupMs
  let j = 0
  await new Promise<void>((resolve) => {
    const run = () => {
      const now = nowMs()
      while (j < total) {
        const t = start + j * interval
        if (t > now) break
        if (senders[j % senders.length]!.command(`${args.step}-${j}`, t, pad)) recorder.commandsSent++
        j++
      }
      if (j >= total) return resolve()
      setTimeout(run, Math.max(0, start + j * interval - nowMs()))
    }
    setTimeout(run, 20)
  })
  const deadline = nowMs() + args.drainMs
  while (recorder.commandReplies < recorder.commandsSent && nowMs() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return {
    ...recorder.report(recorder.commandsSent - recorder.commandReplies),
    clients: clients.length,
    open: clients.filter((c) => c.isOpen).length
  }
}

const drop = () => {
  for (const c of clients) c.terminate()
  return { dropped: clients.length }
}

const resume = async (args: { timeoutMs: number }) => {
  const recoveries: Array<Recovery> = []
  const errors = new Map<string, number>()
  const total = Histogram.make()
  const subscribe = Histogram.make()
  const started = nowMs()
  await Promise.all(
    tidings().map(async (c) => {
      try {
        const r = await within(c.resume(), args.timeoutMs, "resume")
        recoveries.push(r)
        total.recordValue(Math.max(1, Math.round(r.totalMs * 1000)))
        subscribe.recordValue(Math.max(1, Math.round(r.subscribeMs * 1000)))
      } catch (error) {
        count(errors, (error as Error).message.slice(0, 80))
      }
    })
  )
  return {
    resumed: recoveries.length,
    failed: tidings().length - recoveries.length,
    notRecovered: recoveries.filter((r) => !r.recovered).length,
    replayed: recoveries.reduce((n, r) => n + r.replayed, 0),
    wallMs: nowMs() - started,
    total: Histogram.encode(total),
    subscribe: Histogram.encode(subscribe),
    errors: Object.fromEntries(errors)
  }
}

/** Every tidings client's channel stream must be contiguous and reach `top`. */
const verify = async (args: { top: number; timeoutMs: number }) => {
  const deadline = nowMs() + args.timeoutMs
  while (tidings().some((c) => c.isOpen && c.offset < args.top) && nowMs() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  let gaps = 0
  let repeats = 0
  let behind = 0
  let resets = 0
  let events = 0
  for (const c of tidings()) {
    gaps += c.offsetGaps
    repeats += c.offsetRepeats
    resets += c.resets
    events += c.events
    behind += Math.max(0, args.top - c.offset)
  }
  return { clients: tidings().length, gaps, repeats, behind, resets, events }
}

/** HTTP publish load with autocannon (its own latency histogram; not coordinated-omission corrected). */
const http = async (args: {
  url: string
  body: string
  headers: Record<string, string>
  connections: number
  pipelining: number
  durationS: number
}) => {
  const { default: autocannon } = await import("autocannon")
  const result = await autocannon({
    url: args.url,
    method: "POST",
    headers: args.headers,
    body: args.body,
    connections: args.connections,
    pipelining: args.pipelining,
    duration: args.durationS
  })
  return {
    requestsPerSec: result.requests.total / result.duration,
    total: result.requests.total,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: result.statusCodeStats ?? {},
    latency: {
      count: result.requests.total,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      p999: result.latency.p99_9,
      max: result.latency.max,
      mean: result.latency.average
    }
  }
}

serve(
  {
    open,
    http,
    begin: (args: { step: number }) => recorder.begin(args.step),
    settle,
    progress,
    commands,
    drop,
    resume,
    verify,
    stats: () => ({
      clients: clients.length,
      open: clients.filter((c) => c.isOpen).length,
      closes: Object.fromEntries(closes),
      problems: Object.fromEntries(problems)
    }),
    closeAll: () => {
      for (const c of clients) c.close()
      clients.length = 0
    }
  },
  { pid: process.pid, fdLimit: fdLimit() },
  Number(flag("deadline-ms", "600000"))
)
