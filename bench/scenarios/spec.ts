/**
 * What one scenario run is given: the scenario, server and transport, client count and every knob, plus the
 * context it runs in (logging, a rig factory that reports why a rig cannot start). Profiles and the command line
 * (bench/plan.ts) produce these; scenarios only read them.
 */
import type { TransportName } from "../brokers.ts"
import type { ClientKind } from "../loadgen/BenchClient.ts"
import type { ServerKind } from "../results.ts"
import type { Rig } from "../rig.ts"
import type { LadderPlan, StepPlan } from "./steps.ts"

export type ScenarioName =
  | "fanout"
  | "sse-fanout"
  | "unicast"
  | "command"
  | "storm"
  | "replay"
  | "publish"
  | "http"
  | "hold"
  | "runs"

export const scenarioNames: ReadonlyArray<ScenarioName> = [
  "fanout",
  "sse-fanout",
  "unicast",
  "command",
  "storm",
  "replay",
  "publish",
  "http",
  "hold",
  "runs"
]

export interface Spec {
  readonly scenario: ScenarioName
  readonly server: ServerKind
  readonly transport: TransportName
  readonly clients: number
  /** Load-generator processes (at most MAX_SOCKETS_PER_WORKER clients each). */
  readonly workers: number
  /** tidings server processes behind the port (bench/primary.ts), on a shared transport; 1: one process. */
  readonly serverProcesses: number
  readonly step: StepPlan
  readonly ladder: LadderPlan
  /** fan-out: also run the unpaced (closed-loop) maximum for this long, ms (0: skip). */
  readonly unpacedMs: number
  /** storm / replay: events each client misses while away. */
  readonly missed: number
  /** storm: live events per second while clients resume (0: none). */
  readonly liveRate: number
  /** publish: channel counts to append to round-robin; appends in flight. */
  readonly channels: ReadonlyArray<number>
  readonly inFlight: number
  /** publish / http / hold: how long to run, ms. */
  readonly durationMs: number
  /** hold: steady fan-out rate, events per second. */
  readonly rate: number
  /** http: autocannon connections. */
  readonly connections: number
  /** Connections opened concurrently while setting up clients. */
  readonly connectConcurrency: number
  /** tidings clients ack at most this long after an event, and after 100 events (0: never). */
  readonly ackMs: number
}

export interface Context {
  readonly log: (line: string) => void
  /** A rig for this spec, or why none can start (a missing broker, an unloadable transport). */
  readonly rig: (spec: Spec) => Promise<Rig | string>
}

export const label = (spec: Spec): string =>
  `${spec.scenario} ${spec.server}${spec.server === "tidings" ? `/${spec.transport}` : ""}${spec.serverProcesses > 1 ? ` ×${spec.serverProcesses} processes` : ""} ${spec.clients > 0 ? `${spec.clients} clients` : ""}`.trim()

/** The clients a spec's load generators hold: SSE readers for `sse-fanout`, else the server's own kind. */
export const clientKindOf = (spec: Spec): ClientKind => (spec.scenario === "sse-fanout" ? "sse" : spec.server)
