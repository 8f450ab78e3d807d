/**
 * The application the `runs` bench scenario drives: a protocol (`benchruns`) and one run, `Work`, with the
 * commands bound to it. A run does `steps` steps of `stepMs` each (one `progress` event per step), then
 * `rounds` checkpoints in a row, each answered by a client and acknowledged with a `pong` event, then `done`.
 * Every event carries the pid of the worker that published it, so the bench can tell which worker ran what.
 */
import { Effect, Schema } from "effect"
import * as Protocol from "../../src/protocol/Protocol.ts"
import * as Runs from "../../src/runs/index.ts"
import type { Handlers } from "../../src/server/Handlers.ts"
import * as RunCommands from "../../src/server/RunCommands.ts"

const NoSuchRun = Schema.Struct({ _tag: Schema.tag("NoSuchRun"), runId: Schema.String })
const NotWaiting = Schema.Struct({ _tag: Schema.tag("NotWaiting"), runId: Schema.String })
const Input = Schema.Struct({ steps: Schema.Int, stepMs: Schema.Int, rounds: Schema.Int })

export const BenchRunsProtocol = Protocol.make(
  "benchruns",
  Protocol.version({
    version: 1,
    events: {
      progress: Schema.Struct({ step: Schema.Int, pid: Schema.Int }),
      waiting: Schema.Struct({ round: Schema.Int, pid: Schema.Int }),
      pong: Schema.Struct({ round: Schema.Int, pid: Schema.Int }),
      done: Schema.Struct({ pid: Schema.Int })
    },
    commands: {
      start: Protocol.command({
        payload: Input,
        result: Schema.Struct({ runId: Schema.String, channel: Schema.String }),
        error: Schema.Never
      }),
      answer: Protocol.command({
        payload: Schema.Struct({ runId: Schema.String, round: Schema.Int }),
        result: Schema.Struct({}),
        error: Schema.Union([NoSuchRun, NotWaiting])
      })
    }
  })
)
export type BenchRunsProtocol = typeof BenchRunsProtocol

export const Work = Runs.make(BenchRunsProtocol, "BenchWork", { input: Input, answer: Schema.Int })

const bind = RunCommands.bind(BenchRunsProtocol)

export const handlers: Handlers<BenchRunsProtocol, Runs.RunClient> = {
  start: bind.start("start", Work, { input: (payload) => payload, result: (run) => run }),
  answer: bind.answer("answer", Work, {
    target: (payload) => ({ runId: payload.runId, checkpoint: `r${payload.round}`, answer: payload.round }),
    result: () => ({}),
    notFound: (runId) => ({ _tag: "NoSuchRun", runId }),
    notOwner: (runId) => ({ _tag: "NoSuchRun", runId }),
    notPending: (runId) => ({ _tag: "NotWaiting", runId })
  })
}

export const worker = Runs.implement(Work, (input, run) =>
  Effect.gen(function* () {
    const pid = process.pid
    for (let step = 1; step <= input.steps; step++) {
      yield* run.step(
        "work",
        Effect.andThen(
          input.stepMs > 0 ? Effect.sleep(input.stepMs) : Effect.void,
          run.publish("progress", { step, pid })
        )
      )
    }
    for (let round = 1; round <= input.rounds; round++) {
      yield* run.checkpoint(`r${round}`, run.publish("waiting", { round, pid }))
      yield* run.step("pong", run.publish("pong", { round, pid: process.pid }))
    }
    yield* run.step("done", run.publish("done", { pid: process.pid }))
  })
)
