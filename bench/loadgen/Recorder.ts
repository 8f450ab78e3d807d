/**
 * What one load-generator process measures during a step: a latency histogram (receipt − scheduled time, µs),
 * deliveries received (all, and inside the measured window), and per-stream continuity — every client's `i`
 * must go 0, 1, 2, … within a step, so a gap is a lost event and a repeat a duplicate. Commands record their
 * round trips here too. It owns no sockets; clients call it with what scan.ts read.
 */
import * as Histogram from "../histogram.ts"
import { scanned } from "./scan.ts"

/** Per-client position in the current step's stream. */
export interface StreamState {
  step: number
  lastI: number
  count: number
}

export const newStream = (): StreamState => ({ step: -1, lastI: -1, count: 0 })

export interface StepReport {
  readonly step: number
  readonly histogram: string
  readonly received: number
  readonly measured: number
  /** Gaps inside a client's stream (an event skipped while later ones arrived). */
  readonly lost: number
  readonly duplicated: number
  /** Deliveries from an older step arriving during this one. */
  readonly late: number
  /** Events never received by the end of the step's drain (filled in by the worker). */
  readonly missing: number
  readonly firstReceipt: number
  readonly lastReceipt: number
  readonly commandsSent: number
  readonly commandErrors: Record<string, number>
}

export class Recorder {
  step = -1
  histogram = Histogram.make()
  received = 0
  measured = 0
  lost = 0
  duplicated = 0
  late = 0
  firstReceipt = 0
  lastReceipt = 0
  commandsSent = 0
  commandReplies = 0
  commandErrors = new Map<string, number>()
  /** Measure commands whose scheduled time is at or after this. */
  commandsMeasuredFrom = Number.POSITIVE_INFINITY

  begin(step: number): void {
    this.step = step
    this.histogram.reset()
    this.received = 0
    this.measured = 0
    this.lost = 0
    this.duplicated = 0
    this.late = 0
    this.firstReceipt = 0
    this.lastReceipt = 0
    this.commandsSent = 0
    this.commandReplies = 0
    this.commandErrors = new Map()
    this.commandsMeasuredFrom = Number.POSITIVE_INFINITY
  }

  /** A delivery whose Tick fields are in `scanned`. */
  tick(stream: StreamState, now: number): void {
    const { s, i } = scanned
    if (s !== stream.step) {
      if (s < stream.step) {
        this.late++
        return
      }
      stream.step = s
      stream.lastI = -1
      stream.count = 0
    }
    if (i <= stream.lastI) {
      this.duplicated++
      return
    }
    if (i > stream.lastI + 1) this.lost += i - stream.lastI - 1
    stream.lastI = i
    stream.count++
    if (s !== this.step) return
    this.received++
    if (this.firstReceipt === 0) this.firstReceipt = now
    this.lastReceipt = now
    if (scanned.m === 1) {
      this.measured++
      this.histogram.recordValue(Math.max(1, Math.round((now - scanned.t) * 1000)))
    }
  }

  /** A command reply; `scheduled` is the time the command was due to be sent. */
  reply(scheduled: number, now: number): void {
    this.commandReplies++
    if (this.firstReceipt === 0) this.firstReceipt = now
    this.lastReceipt = now
    if (scheduled >= this.commandsMeasuredFrom) {
      this.measured++
      this.histogram.recordValue(Math.max(1, Math.round((now - scheduled) * 1000)))
    }
  }

  commandError(code: string): void {
    this.commandReplies++
    this.commandErrors.set(code, (this.commandErrors.get(code) ?? 0) + 1)
  }

  report(missing: number): StepReport {
    return {
      step: this.step,
      histogram: Histogram.encode(this.histogram),
      received: this.received,
      measured: this.measured,
      lost: this.lost,
      duplicated: this.duplicated,
      late: this.late,
      missing,
      firstReceipt: this.firstReceipt,
      lastReceipt: this.lastReceipt,
      commandsSent: this.commandsSent,
      commandErrors: Object.fromEntries(this.commandErrors)
    }
  }
}
