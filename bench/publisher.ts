/**
 * The publisher that runs inside every server under test (tidings and the baselines alike), so they all publish
 * the same way: on the server's own event loop, from a timer, like an application would.
 *
 * - paced: a fixed rate; event j is SCHEDULED at start + j/rate and stamped with that time, and a late timer
 *   publishes every event whose time has come at once. Latency measured from the stamp therefore includes any
 *   stall of the server or of this timer (coordinated omission corrected).
 * - unpaced: as fast as the slowest client keeps up, with at most `window` events outstanding (the load generator
 *   reports progress); stamped with the actual publish time. It measures saturation throughput, not latency.
 * - burst: `count` events as fast as possible (to fill a log while clients are away).
 * It knows nothing of sockets or transports: a server passes a `PublishSink`.
 */
import { nowMs, padFor, type Tick, tick } from "./protocol.ts"

/** How a server publishes one event. `target` -1 is the fan-out channel, else the client index (unicast). */
export interface PublishSink {
  readonly publish: (target: number, data: Tick) => undefined | Promise<unknown>
}

export interface PacedArgs {
  readonly step: number
  /** Events per second. */
  readonly rate: number
  readonly durationMs: number
  /** Events in the first `warmupMs` are delivered and checked, but not measured. */
  readonly warmupMs: number
  /** 0: every event to the fan-out channel; N: event j to client j mod N. */
  readonly targets: number
  readonly payloadBytes: number
}

export interface PacedResult {
  readonly published: number
  readonly measured: number
  /** Length of the measured window by schedule, ms. */
  readonly windowMs: number
  /** How far behind its schedule the publisher's timer ever ran, ms. */
  readonly maxLagMs: number
  readonly failed: number
}

export interface UnpacedArgs {
  readonly step: number
  readonly durationMs: number
  /** Most events published and not yet received by the slowest client. */
  readonly window: number
  readonly payloadBytes: number
}

export class Publisher {
  private progress = 0
  private wake: (() => void) | undefined
  private stopped = new Set<number>()
  failed = 0

  constructor(private readonly sink: PublishSink) {}

  private send(target: number, data: Tick): undefined | Promise<unknown> {
    const result = this.sink.publish(target, data)
    return result?.catch(() => {
      this.failed++
    })
  }

  /** The load generator's report: the slowest client has received this many events of the unpaced step. */
  /** The publisher's IPC commands, as every server under test (tidings and the baselines) exposes them. */
  commands() {
    return {
      paced: (args: PacedArgs) => this.paced(args),
      stopPaced: (args: { step: number }) => this.stop(args.step),
      unpaced: (args: UnpacedArgs) => this.unpaced(args),
      burst: (args: Parameters<Publisher["burst"]>[0]) => this.burst(args),
      progress: (args: { received: number }) => this.onProgress(args.received)
    }
  }

  onProgress(received: number): void {
    if (received > this.progress) this.progress = received
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Ends a paced run early (a background stream). */
  stop(step: number): void {
    this.stopped.add(step)
  }

  paced(args: PacedArgs): Promise<PacedResult> {
    const interval = 1000 / args.rate
    const total = Math.max(1, Math.round((args.rate * args.durationMs) / 1000))
    const warm = Math.min(total - 1, Math.round((args.rate * args.warmupMs) / 1000))
    const pad = padFor(args.payloadBytes)
    const counters = args.targets > 0 ? new Int32Array(args.targets) : undefined
    const failedBefore = this.failed
    const start = nowMs() + 20
    let j = 0
    let maxLag = 0
    return new Promise((resolve) => {
      const run = () => {
        const now = nowMs()
        while (j < total && !this.stopped.has(args.step)) {
          const t = start + j * interval
          if (t > now) break
          if (now - t > maxLag) maxLag = now - t
          const target = counters ? j % args.targets : -1
          const i = counters ? counters[target]!++ : j
          this.send(target, tick(args.step, i, t, j >= warm, pad))
          j++
        }
        if (j >= total || this.stopped.has(args.step)) {
          resolve({
            published: j,
            measured: Math.max(0, j - warm),
            windowMs: Math.max(0, j - warm) * interval,
            maxLagMs: maxLag,
            failed: this.failed - failedBefore
          })
          return
        }
        setTimeout(run, Math.max(0, start + j * interval - nowMs()))
      }
      setTimeout(run, 20)
    })
  }

  unpaced(args: UnpacedArgs): Promise<{ published: number; elapsedMs: number }> {
    const pad = padFor(args.payloadBytes)
    this.progress = 0
    const start = nowMs()
    const end = start + args.durationMs
    let j = 0
    return new Promise((resolve) => {
      const run = () => {
        const now = nowMs()
        if (now >= end) return resolve({ published: j, elapsedMs: now - start })
        // small batches, then yield, so the server's writes interleave with publishing
        let batch = 0
        while (j - this.progress < args.window && batch < 16) {
          this.send(-1, tick(args.step, j, nowMs(), true, pad))
          j++
          batch++
        }
        if (j - this.progress >= args.window) {
          const timer = setTimeout(() => {
            this.wake = undefined
            run()
          }, 50)
          this.wake = () => {
            clearTimeout(timer)
            setImmediate(run)
          }
        } else setImmediate(run)
      }
      run()
    })
  }

  /** Publishes `count` events to one target as fast as possible; resolves when all were accepted. */
  async burst(args: {
    readonly step: number
    readonly count: number
    readonly target: number
    readonly payloadBytes: number
  }): Promise<{ published: number; failed: number; ms: number }> {
    const pad = padFor(args.payloadBytes)
    const failedBefore = this.failed
    const started = nowMs()
    for (let j = 0; j < args.count; ) {
      const batch: Array<Promise<unknown>> = []
      for (let k = 0; k < 256 && j < args.count; k++, j++) {
        const result = this.send(args.target, tick(args.step, j, nowMs(), false, pad))
        if (result) batch.push(result)
      }
      if (batch.length > 0) await Promise.all(batch)
      else await new Promise((resolve) => setImmediate(resolve))
    }
    return { published: args.count, failed: this.failed - failedBefore, ms: nowMs() - started }
  }
}
