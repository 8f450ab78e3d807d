/**
 * The orchestrator's handle on the load-generator processes (worker.ts): starts them, splits clients and command
 * rates between them, merges their reports (histograms added, counts summed), and relays unpaced-run progress
 * (the slowest client over all workers) to the server's publisher.
 */
import { Child } from "../child.ts"
import * as Histogram from "../histogram.ts"
import type { ClientKind } from "./BenchClient.ts"
import type { StepReport } from "./Recorder.ts"

export interface Settled extends Omit<StepReport, "histogram"> {
  readonly histogram: Histogram.Histogram
  readonly clients: number
  readonly open: number
}

type WorkerReport = StepReport & { clients: number; open: number }

/**
 * Most sockets one load-generator process holds: one process may open 20,000 files on the bench machine, and a
 * worker also needs files for its pipes and modules.
 */
export const MAX_SOCKETS_PER_WORKER = 15_000

export class LoadGen {
  private shares: Array<number> = []
  private constructor(readonly workers: ReadonlyArray<Child>) {}

  static async start(
    count: number,
    options: {
      fdLimit: number
      deadlineMs: number
      ackMs: number
      cpus?: string | undefined
      cpuProfDir?: string | undefined
    }
  ): Promise<LoadGen> {
    const workers = await Promise.all(
      Array.from({ length: count }, (_, w) =>
        Child.spawn({
          name: `loadgen-${w}`,
          script: "loadgen/worker.ts",
          args: ["--deadline-ms", String(options.deadlineMs), "--ack-ms", String(options.ackMs)],
          fdLimit: options.fdLimit,
          // they all load the TypeScript (tsx) at once on the same cores
          readyTimeoutMs: 30_000 + 5000 * count,
          cpus: options.cpus,
          ...(options.cpuProfDir ? { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir] } : {})
        })
      )
    )
    return new LoadGen(workers)
  }

  get pids(): Array<number> {
    return this.workers.map((w) => w.pid)
  }

  private all<T>(op: string, args: (w: number) => unknown, timeoutMs: number): Promise<Array<T>> {
    return Promise.all(this.workers.map((worker, w) => worker.call<T>(op, args(w), timeoutMs)))
  }

  /**
   * Opens `clients` more clients (indices from `from`) split over the workers; setup rate (connect and
   * authenticate) is clients / the slowest worker's time; subscribing is timed apart.
   */
  async open(args: {
    kind: ClientKind
    url: string
    from: number
    clients: number
    channel: "fanout" | "personal" | "none"
    concurrency: number
    timeoutMs: number
  }) {
    const n = this.workers.length
    const batch = Array.from({ length: n }, (_, w) => Math.floor(args.clients / n) + (w < args.clients % n ? 1 : 0))
    const starts = batch.map((_, w) => args.from + batch.slice(0, w).reduce((a, b) => a + b, 0))
    this.shares = batch.map((b, w) => b + (this.shares[w] ?? 0))
    const reports = await this.all<{
      opened: number
      failed: number
      ms: number
      subscribeMs: number
      errors: Record<string, number>
    }>(
      "open",
      (w) => ({
        kind: args.kind,
        url: args.url,
        from: starts[w],
        count: batch[w],
        channel: args.channel,
        concurrency: Math.max(1, Math.ceil(args.concurrency / n)),
        timeoutMs: args.timeoutMs
      }),
      // the whole batch may take long at 100,000 clients: allow down to 200 connections/s
      args.timeoutMs + 120_000 + args.clients * 5
    )
    const opened = reports.reduce((s, r) => s + r.opened, 0)
    const ms = Math.max(...reports.map((r) => r.ms))
    const subscribeMs = Math.max(...reports.map((r) => r.subscribeMs))
    const errors: Record<string, number> = {}
    for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v
    return {
      opened,
      failed: args.clients - opened,
      ms,
      perSec: ms > 0 ? (opened / ms) * 1000 : 0,
      subscribePerSec:
        args.kind === "tidings" && args.channel !== "none" && subscribeMs > 0
          ? (opened / subscribeMs) * 1000
          : undefined,
      errors
    }
  }

  begin(step: number): Promise<unknown> {
    return this.all("begin", () => ({ step }), 10_000)
  }

  private merge(reports: ReadonlyArray<WorkerReport>): Settled {
    const sum = (f: (r: WorkerReport) => number) => reports.reduce((s, r) => s + f(r), 0)
    const errors: Record<string, number> = {}
    for (const r of reports) for (const [k, v] of Object.entries(r.commandErrors)) errors[k] = (errors[k] ?? 0) + v
    const firsts = reports.map((r) => r.firstReceipt).filter((t) => t > 0)
    return {
      step: reports[0]?.step ?? -1,
      histogram: Histogram.merge(reports.map((r) => r.histogram)),
      received: sum((r) => r.received),
      measured: sum((r) => r.measured),
      lost: sum((r) => r.lost),
      duplicated: sum((r) => r.duplicated),
      late: sum((r) => r.late),
      missing: sum((r) => r.missing),
      firstReceipt: firsts.length > 0 ? Math.min(...firsts) : 0,
      lastReceipt: Math.max(0, ...reports.map((r) => r.lastReceipt)),
      commandsSent: sum((r) => r.commandsSent),
      commandErrors: errors,
      clients: sum((r) => r.clients),
      open: sum((r) => r.open)
    }
  }

  /** Waits until every client received its share of `published` (or the timeout), then merges the reports. */
  async settle(step: number, published: number, targets: number, timeoutMs: number): Promise<Settled> {
    return this.merge(
      await this.all<WorkerReport>("settle", () => ({ step, published, targets, timeoutMs }), timeoutMs + 30_000)
    )
  }

  /** Relays the slowest client's progress to `deliver` while an unpaced step runs; returns the stopper. */
  async relayProgress(step: number, deliver: (received: number) => void): Promise<() => Promise<void>> {
    const latest = this.workers.map(() => 0)
    const offs = this.workers.map((worker, w) =>
      worker.on("progress", (data) => {
        latest[w] = (data as { received: number }).received
        deliver(Math.min(...latest))
      })
    )
    await this.all("progress", () => ({ step, on: true }), 10_000)
    return async () => {
      for (const off of offs) off()
      await this.all("progress", () => ({ step, on: false }), 10_000)
    }
  }

  /** Sends `rate` commands per second in total, split over the workers by their share of clients. */
  async commands(args: {
    step: number
    rate: number
    durationMs: number
    warmupMs: number
    payloadBytes: number
    drainMs: number
  }): Promise<Settled> {
    const total = this.shares.reduce((a, b) => a + b, 0) || 1
    return this.merge(
      await this.all<WorkerReport>(
        "commands",
        (w) => ({ ...args, rate: (args.rate * (this.shares[w] ?? 0)) / total }),
        args.durationMs + args.drainMs + 30_000
      )
    )
  }

  drop(): Promise<unknown> {
    return this.all("drop", () => ({}), 10_000)
  }

  async resume(timeoutMs: number) {
    const reports = await this.all<{
      resumed: number
      failed: number
      notRecovered: number
      replayed: number
      wallMs: number
      total: string
      subscribe: string
      errors: Record<string, number>
    }>("resume", () => ({ timeoutMs }), timeoutMs + 30_000)
    return {
      resumed: reports.reduce((s, r) => s + r.resumed, 0),
      failed: reports.reduce((s, r) => s + r.failed, 0),
      notRecovered: reports.reduce((s, r) => s + r.notRecovered, 0),
      replayed: reports.reduce((s, r) => s + r.replayed, 0),
      wallMs: Math.max(...reports.map((r) => r.wallMs)),
      total: Histogram.merge(reports.map((r) => r.total)),
      subscribe: Histogram.merge(reports.map((r) => r.subscribe)),
      errors: reports.map((r) => r.errors)
    }
  }

  async verify(top: number, timeoutMs: number) {
    const reports = await this.all<{
      clients: number
      gaps: number
      repeats: number
      behind: number
      resets: number
      events: number
    }>("verify", () => ({ top, timeoutMs }), timeoutMs + 30_000)
    const sum = (f: (r: (typeof reports)[number]) => number) => reports.reduce((s, r) => s + f(r), 0)
    return {
      clients: sum((r) => r.clients),
      gaps: sum((r) => r.gaps),
      repeats: sum((r) => r.repeats),
      behind: sum((r) => r.behind),
      resets: sum((r) => r.resets),
      events: sum((r) => r.events)
    }
  }

  async stats() {
    const reports = await this.all<{
      clients: number
      open: number
      closes: Record<string, number>
      problems: Record<string, number>
    }>("stats", () => ({}), 10_000)
    const closes: Record<string, number> = {}
    const problems: Record<string, number> = {}
    for (const r of reports) {
      for (const [k, v] of Object.entries(r.closes)) closes[k] = (closes[k] ?? 0) + v
      for (const [k, v] of Object.entries(r.problems)) problems[k] = (problems[k] ?? 0) + v
    }
    return {
      clients: reports.reduce((s, r) => s + r.clients, 0),
      open: reports.reduce((s, r) => s + r.open, 0),
      closes,
      closeCount: Object.values(closes).reduce((a, b) => a + b, 0),
      problems
    }
  }

  /** Runs autocannon from the first worker (its own process, never the server's). */
  http<T>(args: unknown, timeoutMs: number): Promise<T> {
    return this.workers[0]!.call<T>("http", args, timeoutMs)
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call("closeAll", {}, 5000).catch(() => undefined)))
    await Promise.all(this.workers.map((w) => w.stop()))
  }
}
