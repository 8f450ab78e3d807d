/**
 * The gateway's side of runs: start a run, cancel it, answer its checkpoint, ask where it stands — from any
 * gateway, whichever worker executes the run. Commands go through the workflow engine (execute, interrupt,
 * durable deferreds); ownership and state come from the run directory. Every call is bounded: when no worker
 * begins a run in time, or the run storage does not answer, it fails with CommandUnavailable (answered to the
 * client as `unavailable` with a retry delay) rather than hang.
 */
import { randomBytes } from "node:crypto"
import { Cause, Clock, Context, Duration, Effect, Fiber, Layer } from "effect"
import { DurableDeferred, type WorkflowEngine } from "effect/workflow"
import { CommandUnavailable } from "../protocol/CommandUnavailable.ts"
import { withDeadline } from "./Deadline.ts"
import { CheckpointNotPending, NotRunOwner, RunLimitExceeded, RunNotFound, type RunStorageError } from "./errors.ts"
import type { AnswerOf, AnyRunDefinition, InputOf } from "./RunDefinition.ts"
import { RunDirectory } from "./RunDirectory.ts"
import { isFinal, type RunRecord } from "./RunRecord.ts"
import { RunsStatus } from "./RunsStatus.ts"

export interface StartedRun {
  readonly runId: string
  readonly channel: string
}

export type CancelOutcome = "cancelled" | "already_finished"

export interface GatewayOptions {
  /** How long a start waits for a worker to begin the run before it answers `unavailable` (default 5,000 ms). */
  readonly startTimeoutMs?: number
  /** How long a cancel waits for the run to stop, to tell `cancelled` from `already_finished` (default 3,000 ms). */
  readonly cancelWaitMs?: number
  /** Bound on each call to the engine or the directory (default 3,000 ms). */
  readonly commandTimeoutMs?: number
  /** The retry delay an `unavailable` answer suggests (default 1,000 ms). */
  readonly retryAfterMs?: number
}

export interface RunClientShape {
  /**
   * Starts a run of `definition` for `owner`, and answers once a worker has begun it. `channel` names the run's
   * channel from its id (default `run:<id>`); with `maxActive`, an owner with that many runs going is refused.
   */
  readonly start: <D extends AnyRunDefinition>(
    definition: D,
    options: {
      readonly owner: string | null
      readonly input: InputOf<D>
      readonly channel?: (runId: string) => string
      readonly maxActive?: number
    }
  ) => Effect.Effect<StartedRun, RunLimitExceeded | CommandUnavailable>

  /**
   * Cancels a run owned by `user`: the run stops at its next step boundary (a step in flight finishes) and its
   * cancel hook publishes its last events. Answers `already_finished` when the run had ended before.
   */
  readonly cancel: (
    runId: string,
    options: { readonly user: string | null; readonly reason?: string | undefined }
  ) => Effect.Effect<CancelOutcome, RunNotFound | NotRunOwner | CommandUnavailable>

  /** Answers checkpoint `checkpoint` of a run of `definition` owned by `user`; the run resumes with the answer. */
  readonly answer: <D extends AnyRunDefinition>(
    definition: D,
    runId: string,
    checkpoint: string,
    answer: AnswerOf<D>,
    options: { readonly user: string | null }
  ) => Effect.Effect<void, RunNotFound | NotRunOwner | CheckpointNotPending | CommandUnavailable>

  /** Where a run stands (undefined: no such run). */
  readonly get: (runId: string) => Effect.Effect<RunRecord | undefined, CommandUnavailable>
}

export class RunClient extends Context.Service<RunClient, RunClientShape>()("tidings/runs/RunClient") {}

const newRunId = () => randomBytes(9).toString("base64url")

/**
 * Checks until `check` yields a value or `ms` have passed: again whenever `changed` completes (the directory heard
 * the run change), and in any case after 5 ms, doubling to 200 ms (a notice may be lost).
 */
const pollFor = <A, E>(
  ms: number,
  check: Effect.Effect<A | undefined, E>,
  changed: Effect.Effect<void>
): Effect.Effect<A | undefined, E> =>
  Effect.gen(function* () {
    const deadline = (yield* Clock.currentTimeMillis) + ms
    let wait = 5
    while (true) {
      // listen before looking, so that a change between the two is not missed
      const notice = yield* Effect.forkChild(changed, { startImmediately: true })
      const value = yield* check
      if (value !== undefined) {
        yield* Fiber.interrupt(notice)
        return value
      }
      const left = deadline - (yield* Clock.currentTimeMillis)
      if (left <= 0) {
        yield* Fiber.interrupt(notice)
        return undefined
      }
      yield* Effect.raceFirst(Fiber.join(notice), Effect.sleep(Duration.millis(Math.min(wait, left))))
      yield* Fiber.interrupt(notice)
      wait = Math.min(wait * 2, 200)
    }
  })

export const make = (definitions: ReadonlyArray<AnyRunDefinition>, options: GatewayOptions = {}) =>
  Effect.gen(function* () {
    const directory = yield* RunDirectory
    const status = yield* RunsStatus
    const engine = yield* Effect.context<WorkflowEngine.WorkflowEngine>()
    const startTimeoutMs = options.startTimeoutMs ?? 5000
    const cancelWaitMs = options.cancelWaitMs ?? 3000
    const commandTimeoutMs = options.commandTimeoutMs ?? 3000
    const retryAfterMs = options.retryAfterMs ?? 1000
    const byName = new Map(definitions.map((d) => [d.name, d] as const))
    const { counters } = status

    const unavailable = (message: string) => new CommandUnavailable({ message, retryAfterMs })
    /** A directory call: its storage error is the client's `unavailable`. */
    const stored = <A>(effect: Effect.Effect<A, RunStorageError>) =>
      Effect.mapError(effect, (error) => unavailable(error.message))
    /** An engine call, bounded; its defects (the engine dies on a storage failure) are `unavailable` too. */
    const engineCall = <A>(what: string, effect: Effect.Effect<A, never, WorkflowEngine.WorkflowEngine>) =>
      withDeadline(Effect.provideContext(effect, engine), commandTimeoutMs, () =>
        Effect.fail(unavailable(`the run engine did not answer ${what} within ${commandTimeoutMs} ms`))
      ).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.interrupt
            : Cause.hasFails(cause)
              ? Effect.failCause(cause)
              : Effect.fail(unavailable(`the run engine failed ${what}: ${Cause.squash(cause)}`))
        )
      )
    const now = Clock.currentTimeMillis
    const owned = (
      runId: string,
      user: string | null
    ): Effect.Effect<RunRecord, RunNotFound | NotRunOwner | CommandUnavailable> =>
      Effect.flatMap(
        stored(directory.get(runId)),
        (record): Effect.Effect<RunRecord, RunNotFound | NotRunOwner> =>
          record === undefined
            ? Effect.fail(new RunNotFound({ runId }))
            : record.owner !== user
              ? Effect.fail(new NotRunOwner({ runId }))
              : Effect.succeed(record)
      )
    const counted =
      (command: string) =>
      <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
        effect.pipe(
          Effect.tap(() => Effect.sync(() => counters.command(command, "ok"))),
          Effect.tapError((error) => Effect.sync(() => counters.command(command, error._tag)))
        )

    const client: RunClientShape = {
      start: (definition, { owner, input, channel, maxActive }) =>
        Effect.gen(function* () {
          if (maxActive !== undefined && (yield* stored(directory.countActive(owner))) >= maxActive) {
            return yield* Effect.fail(new RunLimitExceeded({ limit: maxActive }))
          }
          const runId = newRunId()
          const runChannel = channel?.(runId) ?? `run:${runId}`
          const executionId = yield* definition.executionId(runId)
          yield* stored(
            directory.create(
              { runId, definition: definition.name, executionId, owner, channel: runChannel },
              yield* now
            )
          )
          const started = yield* now
          yield* engineCall(
            "a start",
            definition.workflow.execute({ runId, owner, channel: runChannel, input }, { discard: true })
          ).pipe(
            Effect.catch((error) => Effect.as(Effect.ignore(abandon(runId)), error).pipe(Effect.flatMap(Effect.fail)))
          )
          const left = Math.max(0, startTimeoutMs - ((yield* now) - started))
          const begun = yield* stored(
            pollFor(
              left,
              Effect.map(directory.get(runId), (record) => (record?.state === "starting" ? undefined : record)),
              directory.changed(runId)
            )
          )
          if (begun === undefined && (yield* abandon(runId))) {
            return yield* Effect.fail(
              unavailable(`no worker began the run within ${startTimeoutMs} ms (are workers up?); it will not run`)
            )
          }
          return { runId, channel: runChannel }
        }).pipe(counted("start")),

      cancel: (runId, { user, reason }) =>
        Effect.gen(function* () {
          const record = yield* owned(runId, user)
          if (isFinal(record.state)) return "already_finished" as const
          const definition = byName.get(record.definition)
          if (definition === undefined) {
            return yield* Effect.fail(unavailable(`this gateway does not know runs of ${record.definition}`))
          }
          if (reason !== undefined) yield* stored(directory.setCancelReason(runId, reason, yield* now))
          yield* engineCall("a cancel", definition.workflow.interrupt(record.executionId))
          const ended = yield* stored(
            pollFor(
              cancelWaitMs,
              Effect.map(directory.get(runId), (r) => (r === undefined || isFinal(r.state) ? r : undefined)),
              directory.changed(runId)
            )
          )
          // Not stopped yet (its worker is gone, say): the cancel is recorded and applies when the run next executes.
          return ended === undefined || ended.state === "cancelled" || ended.state === "abandoned"
            ? ("cancelled" as const)
            : ("already_finished" as const)
        }).pipe(counted("cancel")),

      answer: (definition, runId, checkpoint, answer, { user }) =>
        Effect.gen(function* () {
          const record = yield* owned(runId, user)
          const notPending = new CheckpointNotPending({ runId, checkpoint })
          if (record.definition !== definition.name || record.state !== "awaiting_input") {
            return yield* Effect.fail(notPending)
          }
          // of two answers to one checkpoint, exactly one gets past this move
          const taken = yield* stored(
            directory.transition(runId, { from: ["awaiting_input"], onlyAt: checkpoint, to: "running" }, yield* now)
          )
          if (!taken) return yield* Effect.fail(notPending)
          const deferred = definition.checkpoint(checkpoint)
          const token = DurableDeferred.tokenFromExecutionId(deferred, {
            workflow: definition.workflow,
            executionId: record.executionId
          })
          yield* engineCall(
            "an answer",
            DurableDeferred.succeed(deferred, { token, value: { answer, by: user } })
          ).pipe(
            Effect.tap(() =>
              status.transition(
                { runId, definition: definition.name },
                "resumed",
                `${checkpoint} by ${user ?? "anonymous"}`
              )
            ),
            Effect.tapError(() =>
              // reopen the checkpoint so that the answer can be given again
              Effect.ignore(
                Effect.flatMap(now, (at) =>
                  directory.transition(runId, { from: ["running"], to: "awaiting_input", at: checkpoint }, at)
                )
              )
            )
          )
        }).pipe(counted("answer")),

      get: (runId) => stored(directory.get(runId))
    }

    /** Gives up on a start no worker began: true when this gateway's move won (the run will never execute). */
    const abandon = (runId: string) =>
      Effect.flatMap(now, (at) => stored(directory.transition(runId, { from: ["starting"], to: "abandoned" }, at)))

    return client
  })

export const layer = (
  definitions: ReadonlyArray<AnyRunDefinition>,
  options?: GatewayOptions
): Layer.Layer<RunClient, never, RunDirectory | RunsStatus | WorkflowEngine.WorkflowEngine> =>
  Layer.effect(RunClient, make(definitions, options))
