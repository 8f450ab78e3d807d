/**
 * Runs that end with their process: with memory storage nothing outlives the process, so rather than vanish
 * mid-sentence its runs are cancelled when it shuts down, each saying why ("stopped: the server shut down")
 * through its cancel hook while clients are still connected. The server calls `stopAll` first when it closes.
 * With shared storage this service is absent: a stopping worker's runs move to another worker instead.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"
import type { WorkflowEngine } from "effect/workflow"
import type { AnyRunDefinition } from "./RunDefinition.ts"
import { RunDirectory } from "./RunDirectory.ts"
import { isFinal } from "./RunRecord.ts"

export const STOPPED_REASON = "stopped: the server shut down"

export class LocalRuns extends Context.Service<
  LocalRuns,
  {
    /** Cancels every run that has not ended and waits (up to `graceMs`) for them to end. */
    readonly stopAll: (graceMs: number) => Effect.Effect<void>
  }
>()("tidings/runs/LocalRuns") {}

export const layer = (
  definitions: ReadonlyArray<AnyRunDefinition>
): Layer.Layer<LocalRuns, never, RunDirectory | WorkflowEngine.WorkflowEngine> =>
  Layer.effect(
    LocalRuns,
    Effect.gen(function* () {
      const directory = yield* RunDirectory
      const engine = yield* Effect.context<WorkflowEngine.WorkflowEngine>()
      const byName = new Map(definitions.map((d) => [d.name, d] as const))
      const stopAll = (graceMs: number) =>
        Effect.gen(function* () {
          const running = yield* directory.active(100_000)
          if (running.length === 0) return
          const now = yield* Clock.currentTimeMillis
          yield* Effect.forEach(
            running,
            (record) =>
              Effect.gen(function* () {
                const definition = byName.get(record.definition)
                if (definition === undefined) return
                yield* directory.setCancelReason(record.runId, STOPPED_REASON, now)
                yield* definition.workflow.interrupt(record.executionId)
              }),
            { discard: true, concurrency: 16 }
          )
          const deadline = now + graceMs
          while ((yield* Clock.currentTimeMillis) < deadline) {
            const states = yield* Effect.forEach(running, (r) => directory.get(r.runId))
            if (states.every((r) => r === undefined || isFinal(r.state))) return
            yield* Effect.sleep(Duration.millis(20))
          }
        }).pipe(
          Effect.provideContext(engine),
          Effect.catchCause((cause) => Effect.logWarning("stopping this process's runs failed", cause))
        )
      return { stopAll }
    })
  )
