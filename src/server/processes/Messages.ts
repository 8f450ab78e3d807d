/**
 * The messages a supervisor (the cluster primary, Supervisor.ts) and its server processes (ProcessGroup.ts)
 * exchange over node:cluster's IPC channel. Each carries a `tidings` tag so that an application's own IPC
 * messages pass by untouched. Nothing here sends anything: it only names and recognises the messages.
 */
import type { Registry } from "prom-client"

/** One process's metrics as prom-client's `getMetricsAsJSON` gives them, ready for `AggregatorRegistry.aggregate`. */
export type MetricsJson = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>

/** Process → supervisor: whether this process's server is ready now (sent on every change). */
export interface Ready {
  readonly tidings: "ready"
  readonly ready: boolean
}

/** Supervisor → every process: how many of the node's processes are ready (sent on every change). */
export interface Group {
  readonly tidings: "group"
  readonly ready: number
  readonly expected: number
}

/** Process → supervisor: a scrape of `/metrics` reached this process; send back the whole node's. */
export interface MetricsRequest {
  readonly tidings: "metrics-request"
  readonly id: number
}

/** Supervisor → the asking process: the node's metrics in Prometheus text format. */
export interface MetricsReply {
  readonly tidings: "metrics-reply"
  readonly id: number
  readonly text: string
}

/** Supervisor → a process: send your own metrics. */
export interface Collect {
  readonly tidings: "collect"
  readonly id: number
}

/** Process → supervisor: its own metrics, for a `collect` of the same id. */
export interface Collected {
  readonly tidings: "collected"
  readonly id: number
  readonly metrics: MetricsJson
}

export type ToSupervisor = Ready | MetricsRequest | Collected
export type ToProcess = Group | MetricsReply | Collect

const tagged = (message: unknown): message is { readonly tidings: string } =>
  typeof message === "object" && message !== null && typeof (message as { tidings?: unknown }).tidings === "string"

/** Whether an IPC message is one of ours, to the supervisor. */
export const isToSupervisor = (message: unknown): message is ToSupervisor =>
  tagged(message) && ["ready", "metrics-request", "collected"].includes(message.tidings)

/** Whether an IPC message is one of ours, to a process. */
export const isToProcess = (message: unknown): message is ToProcess =>
  tagged(message) && ["group", "metrics-reply", "collect"].includes(message.tidings)

/** The environment variable that tells a forked process its place in the group (0-based). */
export const INDEX_ENV = "TIDINGS_PROCESS_INDEX"
/** The environment variable that tells a forked process how many processes the group has. */
export const COUNT_ENV = "TIDINGS_PROCESS_COUNT"
