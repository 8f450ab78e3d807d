/**
 * The shape of a bench run's results (written as results.json, read by the table, the HTML report and the
 * smoke test). Latencies are milliseconds; CPU is percent of one core; rates are per second.
 */
import type { TransportName } from "./brokers.ts"
import type { LatencySummary } from "./histogram.ts"

export type ServerKind = "tidings" | "ws" | "socketio"

export interface Cpu {
  /** Summed over the server's processes (a group's primary included). */
  readonly server?: number | undefined
  /** A group of server processes (--server-processes): the primary's part of `server` (it accepts every connection). */
  readonly serverPrimary?: number | undefined
  /** Summed over load-generator processes. */
  readonly loadgen?: number | undefined
  readonly broker?: number | undefined
  /** Everything else on the machine: other processes (a shared machine), kernel threads; not the orchestrator. */
  readonly other?: number | undefined
}

export interface Step {
  readonly step: number
  /** Offered load: events per second published (fan-out, unicast) or commands per second sent. */
  readonly rate: number
  /** Deliveries (or replies) per second received inside the measured window, summed over clients. */
  readonly deliveriesPerSec: number
  readonly latency: LatencySummary
  readonly curve: ReadonlyArray<readonly [number, number]>
  readonly pass: boolean
  readonly why?: string | undefined
  /** Other processes on the machine used more than 30% of a core during the step. */
  readonly disturbed: boolean
  readonly expected: number
  readonly received: number
  readonly lost: number
  readonly duplicated: number
  readonly missing: number
  readonly closes: number
  readonly cpu: Cpu
  readonly publisherLagMs?: number | undefined
}

export interface Recovery {
  readonly clients: number
  readonly missed: number
  /** From the reconnect of every client to the last one's `subscribed` (replay complete), ms. */
  readonly fullRecoveryMs: number
  readonly perClient: LatencySummary
  /** `subscribe` sent → `subscribed` received, per client. */
  readonly subscribeToCaughtUp: LatencySummary
  readonly replayed: number
  readonly replayPerSec: number
  readonly lost: number
  readonly duplicated: number
  readonly resets: number
  readonly failed: number
  readonly notRecovered: number
  readonly cpu: Cpu
}

export interface ScenarioResult {
  readonly id: string
  readonly scenario: string
  readonly server: ServerKind
  readonly transport: TransportName
  readonly clients: number
  status: "ok" | "skipped" | "failed"
  reason?: string
  /** The number the table shows for this scenario. */
  headline?: { readonly label: string; readonly value: number; readonly unit: string }
  latency?: LatencySummary
  cpu?: Cpu
  setup?: {
    readonly opened: number
    readonly failed: number
    /** Connect (and authenticate) only, for the clients after the first few. */
    readonly ms: number
    readonly perSec: number
    readonly subscribePerSec?: number
    /** CPU while connecting and subscribing. */
    readonly cpu: Cpu
  }
  idle?: {
    readonly rssBeforeMiB: number
    readonly rssAfterMiB: number
    /** Resident young-generation pages at both points (bench/memory.ts: empty after the GC, left out below). */
    readonly youngBeforeMiB: number
    readonly youngAfterMiB: number
    /** (RSS − young generation) growth per connection: the figure the targets use. */
    readonly perConnectionKiB: number
    /** Plain RSS growth per connection. */
    readonly rssPerConnectionKiB: number
  }
  steps?: Array<Step>
  /** The highest passing step. */
  best?: Step
  /** The highest step below which every rate tried passed. */
  sustained?: Step
  unpaced?: {
    readonly deliveriesPerSec: number
    readonly latency: LatencySummary
    readonly cpu: Cpu
    readonly lost: number
  }
  recovery?: Recovery
  rates?: Record<string, number>
  serverStats?: Record<string, unknown>
  profile?: ReadonlyArray<{ readonly fn: string; readonly selfPct: number }>
  notes: Array<string>
  /** hold: the lines the run ended with (held, delivered, latency, memory, setup against their targets). */
  summary?: Array<string>
  durationMs?: number
}

export interface Machine {
  readonly cpus: number
  readonly model: string
  readonly memoryGiB: number
  readonly node: string
  readonly os: string
  readonly fdLimit: string
}

export interface Verdict {
  readonly target: string
  readonly measured: string
  readonly met: boolean | undefined
  readonly detail: string
}

export interface RunResult {
  readonly startedAt: string
  readonly command: string
  readonly machine: Machine
  readonly results: ReadonlyArray<ScenarioResult>
  readonly comparisons: ReadonlyArray<{ readonly what: string; readonly value: string }>
  readonly verdicts: ReadonlyArray<Verdict>
  readonly durationMs: number
}
