/**
 * A server process's view of the node it is one process of (a worker forked by Supervisor.ts): the server finds
 * this service in its context and then answers `/readyz` for the whole node (ready only while every process is,
 * from the supervisor's table) and `/metrics` for the whole node (every process's registry, summed by the
 * supervisor). `attach` reports the process's own readiness to the supervisor and answers its metrics requests.
 *
 * Outside a supervised process the layer fails at once: a lone process needs no group.
 */
import cluster from "node:cluster"
import { Context, Effect, Layer, type Scope } from "effect"
import { Gauge, type Registry } from "prom-client"
import type { Readiness } from "../../runs/RunsStatus.ts"
import { type Balancing, ofThisProcess } from "./Balancing.ts"
import { COUNT_ENV, INDEX_ENV, isToProcess, type ToSupervisor } from "./Messages.ts"

/** How often a process looks at its own readiness (it reports only changes). */
const READY_CHECK_MS = 100
/** How long a scrape waits for the supervisor's sum before answering with this process's metrics alone. */
const METRICS_TIMEOUT_MS = 5000

/** What a server hands to the group once it listens. */
export interface Member {
  /** The server's own readiness (transport, draining, runs), without the other processes'. */
  readonly ready: () => boolean
  readonly registry: Registry
  readonly connections: () => number
}

export interface ProcessGroupShape {
  /** This process's place in the node, 0-based. */
  readonly index: number
  /** Processes in the node. */
  readonly count: number
  /** How the node's processes share the port: with `kernel`, this process listens on it with SO_REUSEPORT. */
  readonly balancing: Balancing
  /** Ready while every process of the node is, as the supervisor last said. */
  readonly readiness: () => Readiness
  /** The node's metrics, every process's summed; this process's own (`local`) when the supervisor does not answer. */
  readonly renderMetrics: (local: Registry) => Promise<string>
  /** Reports the server's readiness to the supervisor, and lets it collect the server's metrics, while the scope lasts. */
  readonly attach: (member: Member) => Effect.Effect<void, never, Scope.Scope>
}

export class ProcessGroup extends Context.Service<ProcessGroup, ProcessGroupShape>()("tidings/server/ProcessGroup") {}

const send = (message: ToSupervisor): void => {
  try {
    if (process.connected) process.send?.(message)
  } catch {
    // the supervisor is gone: node:cluster ends this process on its own
  }
}

const make = Effect.gen(function* () {
  const index = Number(process.env[INDEX_ENV])
  const count = Number(process.env[COUNT_ENV])
  if (!cluster.isWorker || !Number.isInteger(index) || !Number.isInteger(count)) {
    return yield* Effect.die(
      new Error("ProcessGroup.layer runs in a process forked by Processes.supervise (a node:cluster worker)")
    )
  }
  let group: { readonly ready: number; readonly expected: number } | undefined
  let registry: Registry | undefined
  let nextRequest = 0
  const replies = new Map<number, (text: string) => void>()

  const onMessage = (message: unknown) => {
    if (!isToProcess(message)) return
    switch (message.tidings) {
      case "group":
        group = { ready: message.ready, expected: message.expected }
        return
      case "metrics-reply":
        replies.get(message.id)?.(message.text)
        return
      case "collect":
        if (registry === undefined) return send({ tidings: "collected", id: message.id, metrics: [] })
        void registry.getMetricsAsJSON().then(
          (metrics) => send({ tidings: "collected", id: message.id, metrics }),
          () => send({ tidings: "collected", id: message.id, metrics: [] })
        )
    }
  }
  process.on("message", onMessage)
  yield* Effect.addFinalizer(() => Effect.sync(() => process.off("message", onMessage)))

  const renderMetrics = (local: Registry): Promise<string> =>
    new Promise((resolve) => {
      if (!process.connected) return resolve(local.metrics())
      const id = nextRequest++
      const timer = setTimeout(() => answer(undefined), METRICS_TIMEOUT_MS)
      const answer = (text: string | undefined) => {
        clearTimeout(timer)
        replies.delete(id)
        resolve(text ?? local.metrics())
      }
      replies.set(id, answer)
      send({ tidings: "metrics-request", id })
    })

  const attach = (member: Member): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function* () {
      registry = member.registry
      if (member.registry.getSingleMetric("tidings_process_connections_open") === undefined) {
        new Gauge({
          name: "tidings_process_connections_open",
          help: "Open WebSocket connections of one process of the node",
          labelNames: ["process"],
          registers: [member.registry],
          collect() {
            this.set({ process: String(index) }, member.connections())
          }
        })
      }
      let reported: boolean | undefined
      const report = () => {
        const ready = member.ready()
        if (ready === reported) return
        reported = ready
        send({ tidings: "ready", ready })
      }
      report()
      const timer = setInterval(report, READY_CHECK_MS)
      // the scope closes when the server starts shutting down: the node is not ready from then on
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          clearInterval(timer)
          send({ tidings: "ready", ready: false })
        })
      )
    })

  return ProcessGroup.of({
    index,
    count,
    balancing: ofThisProcess(),
    readiness: () =>
      group === undefined
        ? { ready: false, reason: "waiting for the supervisor" }
        : group.ready >= group.expected
          ? { ready: true }
          : { ready: false, reason: `${group.ready} of ${group.expected} processes ready` },
    renderMetrics,
    attach
  })
})

/** The group, in a process forked by `Processes.supervise`. */
export const layer: Layer.Layer<ProcessGroup> = Layer.effect(ProcessGroup, make)
