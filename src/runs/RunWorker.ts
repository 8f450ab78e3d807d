/**
 * Implementing a run on workers: `implement(definition, body, hooks)` is the Layer that registers the run's
 * workflow with the engine, so that whichever worker holds a run's shard executes it. Around the body it records
 * the run's transitions in the directory (begun, completed, failed, cancelled, moved to this worker), logs each
 * once, and calls the application's hooks when the run is cancelled or fails, so it can say so on its channel.
 */
import { Cause, Clock, Effect, Exit, Layer, type Schema } from "effect"
import { Workflow, WorkflowEngine } from "effect/workflow"
import type { Position } from "../protocol/Position.ts"
import type { AnyProtocol, EventData, EventName, LatestOf } from "../protocol/Protocol.ts"
import { ProtocolCodec } from "../protocol/ProtocolCodec.ts"
import * as Publisher from "../transports/Publisher.ts"
import { Transport } from "../transports/Transport.ts"
import { DEFAULT_RETRY_MS } from "./Durably.ts"
import type { RunStorageError } from "./errors.ts"
import { CurrentStep } from "./Publications.ts"
import * as RunContext from "./RunContext.ts"
import type { RunDefinition } from "./RunDefinition.ts"
import { RunDirectory } from "./RunDirectory.ts"
import { activeStates } from "./RunRecord.ts"
import { RunsStatus } from "./RunsStatus.ts"
import { StepResults } from "./StepResults.ts"

/** What a hook may do when the run ends cancelled or failed: publish (keyed, so a repeated hook repeats nothing). */
export interface EndContext<P extends AnyProtocol>
  extends Pick<RunContext.RunContext<P, never>, "runId" | "owner" | "channel" | "executionId"> {
  readonly publish: <K extends EventName<LatestOf<P>>>(
    event: K,
    data: EventData<LatestOf<P>, K>
  ) => Effect.Effect<Position>
  readonly publishTo: <K extends EventName<LatestOf<P>>>(
    channel: string,
    event: K,
    data: EventData<LatestOf<P>, K>
  ) => Effect.Effect<Position>
}

export interface RunHooks<P extends AnyProtocol, R> {
  /** The run was cancelled; `reason` is what the cancel said (null if nothing). Publish its last events here. */
  readonly onCancel?: (run: EndContext<P>, reason: string | null) => Effect.Effect<void, never, R>
  /** The run failed (its body failed or died); `error` says why. */
  readonly onFailure?: (run: EndContext<P>, error: string) => Effect.Effect<void, never, R>
}

export interface WorkerOptions {
  /** How long a run retries one publication or directory write before it fails (default 60 s). */
  readonly retryMs?: number
}

/** What `implement`'s Layer needs: the workflow engine, the transport runs publish through, and the runs layer. */
export type WorkerEnv = WorkflowEngine.WorkflowEngine | Transport | RunDirectory | RunsStatus

export const implement = <
  Name extends string,
  P extends AnyProtocol,
  Input extends Schema.Top,
  Answer extends Schema.Top,
  E,
  R,
  RH = never
>(
  definition: RunDefinition<Name, P, Input, Answer>,
  body: (input: Input["Type"], run: RunContext.RunContext<P, Answer["Type"]>) => Effect.Effect<void, E, R>,
  hooks: RunHooks<P, RH> = {},
  options: WorkerOptions = {}
): Layer.Layer<never, never, WorkerEnv | Exclude<R | RH, RunContext.RunEnv>> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const transport = yield* Transport
      const directory = yield* RunDirectory
      const status = yield* RunsStatus
      const publisher = Publisher.make(transport, new ProtocolCodec(definition.protocol), undefined, true)
      const retryMs = options.retryMs ?? DEFAULT_RETRY_MS
      const results = new StepResults()
      const services: RunContext.RunServices = { publisher, directory, status, retryMs, results }
      const name = { definition: definition.name }
      const persist = <A>(what: string, effect: Effect.Effect<A, RunStorageError>) =>
        RunContext.persist(what, effect, retryMs)
      const now = Clock.currentTimeMillis
      /** Runs this process has entered and not seen end: their replays need not ask the directory again. */
      const entered = new Set<string>()
      const remember = (runId: string) => {
        // bounded: a run that moved away leaves its entry behind until this many newer ones push it out
        if (entered.size >= 100_000) entered.delete(entered.values().next().value!)
        entered.add(runId)
      }

      return definition.workflow.toLayer((payload, executionId) =>
        Effect.gen(function* () {
          // the payload's type depends on Input, which TypeScript cannot resolve inside this generic function
          const { runId, owner, channel, input } = payload as {
            runId: string
            owner: string | null
            channel: string
            input: Input["Type"]
          }
          const identity = { runId, ...name }
          const run = RunContext.make<P, Answer["Type"]>(
            definition as unknown as RunDefinition<string, P, Schema.Top, Schema.Top>,
            { runId, owner, channel, executionId },
            services
          )

          // A hook runs in the run's finalizer (no steps there): its publications take places of their own.
          const ending = (hook: string, effect: Effect.Effect<void, never, RH>) =>
            effect.pipe(
              Effect.provideService(CurrentStep, { key: `${executionId}/tidings.${hook}`, next: 0 }),
              Effect.catchCause((cause) => Effect.logError(`run ${runId}: its ${hook} hook failed`, cause))
            )
          // hooks run with their own place (`ending`), so these publish directly and need no workflow services
          const end = {
            runId,
            owner,
            channel,
            executionId,
            publish: run.publish,
            publishTo: run.publishTo
          } as unknown as EndContext<P>
          const instance = yield* WorkflowEngine.WorkflowInstance
          yield* Workflow.addFinalizer((exit) => {
            // A suspended run's earlier scopes close with success when it finishes: only failures matter here.
            if (Exit.isSuccess(exit)) return Effect.void
            // Interrupted without a cancel: this worker is stopping and the run continues on another one.
            if (Cause.hasInterruptsOnly(exit.cause) && !instance.interrupted) {
              // it may come back here later, from another worker: ask the directory and the engine then
              entered.delete(runId)
              results.forget(executionId)
              return Effect.void
            }
            entered.delete(runId)
            results.forget(executionId)
            const cancelled = instance.interrupted
            const final = cancelled ? "cancelled" : "failed"
            return Effect.gen(function* () {
              const moved = yield* persist(
                `recording a ${final} run`,
                Effect.flatMap(now, (at) => directory.transition(runId, { from: activeStates, to: final }, at))
              )
              const error = cancelled ? "" : (Cause.pretty(exit.cause).split("\n")[0] ?? "failed")
              if (moved) yield* status.transition(identity, final, cancelled ? undefined : error)
              if (cancelled && hooks.onCancel) {
                const record = yield* persist("reading a cancelled run", directory.get(runId))
                yield* ending("cancel", hooks.onCancel(end, record?.cancelReason ?? null))
              }
              if (!cancelled && hooks.onFailure) yield* ending("failure", hooks.onFailure(end, error))
            }).pipe(Effect.catchCause((cause) => Effect.logError(`run ${runId}: recording its end failed`, cause)))
          })

          // Enter the run: record this worker, begin the run if it is starting. Entries of a run already entered
          // here (a replay after a checkpoint) skip the database. No step is needed: a run a gateway abandoned
          // stays abandoned, and one that began never becomes so, so every replay takes the same path.
          if (!entered.has(runId)) {
            const before = yield* persist(
              "entering a run",
              Effect.flatMap(now, (at) => directory.enter(runId, status.worker, at))
            )
            if (before === undefined || before.state === "abandoned") {
              return yield* Effect.logInfo(`run ${runId} was abandoned before it began; not running it`)
            }
            remember(runId)
            if (before.state === "starting") yield* status.transition(identity, "started")
            else if (before.worker !== null && before.worker !== status.worker) {
              yield* status.transition(identity, "moved", `from ${before.worker}`)
            }
          }

          yield* body(input, run).pipe(
            Effect.catchCause((cause) =>
              // a body's failure fails the run (its error is not part of the workflow's schema): a defect here
              Cause.hasInterruptsOnly(cause) ? Effect.interrupt : Effect.die(Cause.squash(cause))
            )
          )
          // a conditional move, so a replay of this end (a crash before the engine stored it) repeats nothing
          entered.delete(runId)
          results.forget(executionId)
          const completed = yield* persist(
            "completing a run",
            Effect.flatMap(now, (at) => directory.transition(runId, { from: activeStates, to: "completed" }, at))
          )
          if (completed) yield* status.transition(identity, "completed")
        })
      )
    })
  ) as Layer.Layer<never, never, WorkerEnv | Exclude<R | RH, RunContext.RunEnv>>
