/**
 * A test application for runs across processes, written against the public API as a user would: a one-version
 * protocol (`steps`), a run that works through N steps with one checkpoint, the commands bound to it, and the
 * run's implementation, which records every execution of every step in a side-effect file so that a test can
 * count re-executions.
 *
 * Each step publishes `progress` part 1, then streams a message of three `chunk`s (`"<n>.0 <n>.1 <n>.2 "`, through
 * run.stream, so a step re-executed after the stream began restarts it: `restart: true` on its first chunk), then
 * `progress` part 2, with pauses between, and writes its side effect lines as it begins and ends. The checkpoint
 * comes after step `checkpointAfter`. Every event carries the pid of the worker that made it. A run's complete log,
 * chunks aside, is therefore: progress 1/1, 1/2, 2/1, 2/2, waiting, resolved, progress 3/1 ... done.
 */
import { appendFileSync } from "node:fs"
import { Effect, Schema } from "effect"
import * as Protocol from "../../../src/protocol/Protocol.ts"
import * as Runs from "../../../src/runs/index.ts"
import type { Handlers } from "../../../src/server/Handlers.ts"
import * as RunCommands from "../../../src/server/RunCommands.ts"

const NoSuchRun = Schema.Struct({ _tag: Schema.tag("NoSuchRun"), runId: Schema.String })
const NotYours = Schema.Struct({ _tag: Schema.tag("NotYours"), runId: Schema.String })
const NotWaiting = Schema.Struct({ _tag: Schema.tag("NotWaiting"), runId: Schema.String })

export const StepsProtocol = Protocol.make(
  "steps",
  Protocol.version({
    version: 1,
    events: {
      progress: Schema.Struct({ n: Schema.Int, part: Schema.Int, pid: Schema.Int }),
      chunk: Schema.Struct({
        n: Schema.Int,
        i: Schema.Int,
        text: Schema.String,
        restart: Schema.optionalKey(Schema.Boolean),
        pid: Schema.Int
      }),
      waiting: Schema.Struct({ pid: Schema.Int }),
      resolved: Schema.Struct({ answer: Schema.String, by: Schema.NullOr(Schema.String), pid: Schema.Int }),
      done: Schema.Struct({ pid: Schema.Int }),
      cancelled: Schema.Struct({ reason: Schema.NullOr(Schema.String), pid: Schema.Int })
    },
    commands: {
      start: Protocol.command({
        payload: Schema.Struct({ steps: Schema.Int, checkpointAfter: Schema.Int }),
        result: Schema.Struct({ runId: Schema.String, channel: Schema.String }),
        error: Schema.Never
      }),
      cancel: Protocol.command({
        payload: Schema.Struct({ runId: Schema.String }),
        result: Schema.Struct({ outcome: Schema.Literals(["cancelled", "already_finished"]) }),
        error: Schema.Union([NoSuchRun, NotYours])
      }),
      answer: Protocol.command({
        payload: Schema.Struct({ runId: Schema.String, answer: Schema.String }),
        result: Schema.Struct({}),
        error: Schema.Union([NoSuchRun, NotYours, NotWaiting])
      })
    }
  })
)
export type StepsProtocol = typeof StepsProtocol

export const StepsRun = Runs.make(StepsProtocol, "Steps", {
  input: Schema.Struct({ steps: Schema.Int, checkpointAfter: Schema.Int }),
  answer: Schema.String
})

const bind = RunCommands.bind(StepsProtocol)

export const stepsHandlers: Handlers<StepsProtocol, Runs.RunClient> = {
  start: bind.start("start", StepsRun, { input: (payload) => payload, result: (run) => run }),
  cancel: bind.cancel("cancel", {
    runId: (payload) => payload.runId,
    result: (outcome) => ({ outcome }),
    notFound: (runId) => ({ _tag: "NoSuchRun", runId }),
    notOwner: (runId) => ({ _tag: "NotYours", runId })
  }),
  answer: bind.answer("answer", StepsRun, {
    target: (payload) => ({ runId: payload.runId, checkpoint: "approve", answer: payload.answer }),
    result: () => ({}),
    notFound: (runId) => ({ _tag: "NoSuchRun", runId }),
    notOwner: (runId) => ({ _tag: "NotYours", runId }),
    notPending: (runId) => ({ _tag: "NotWaiting", runId })
  })
}

export interface StepsWorkerOptions {
  /** Where each step execution appends `begin <runId> <n> <pid> <ms>` and, once done, `end <runId> <n> <pid> <ms>`. */
  readonly sideEffects: string
  /** How long a step takes (two equal halves). */
  readonly stepMs: number
}

/** The run's implementation on a worker. */
export const stepsWorker = (options: StepsWorkerOptions) =>
  Runs.implement(
    StepsRun,
    (input, run) =>
      Effect.gen(function* () {
        const pid = process.pid
        for (let n = 1; n <= input.steps; n++) {
          yield* run.step(
            `step-${n}`,
            Effect.gen(function* () {
              appendFileSync(options.sideEffects, `begin ${run.runId} ${n} ${pid} ${Date.now()}\n`)
              yield* run.publish("progress", { n, part: 1, pid })
              const message = yield* run.stream("chunk", { restart: (first) => ({ ...first, restart: true }) })
              for (let i = 0; i < 3; i++) {
                yield* message.publish({ n, i, text: `${n}.${i} `, pid })
                yield* Effect.sleep(options.stepMs / 6)
              }
              yield* run.publish("progress", { n, part: 2, pid })
              yield* Effect.sleep(options.stepMs / 2)
              appendFileSync(options.sideEffects, `end ${run.runId} ${n} ${pid} ${Date.now()}\n`)
            })
          )
          if (n === input.checkpointAfter) {
            const { answer, by } = yield* run.checkpoint("approve", run.publish("waiting", { pid }))
            yield* run.step("resolved", run.publish("resolved", { answer, by, pid: process.pid }))
          }
        }
        yield* run.publish("done", { pid: process.pid })
      }),
    {
      onCancel: (run, reason) => Effect.asVoid(run.publish("cancelled", { reason, pid: process.pid }))
    }
  )
