/**
 * Binding a protocol's commands to runs, typed end to end: `start` executes a run, `cancel` interrupts one, an
 * answer completes a run's checkpoint. Each binding is an ordinary command handler (Handlers.ts) that calls the
 * RunClient, so it sits beside hand-written handlers in one `Handlers` object, and maps what the run engine says
 * (not found, not the owner, not pending, limit reached) to the protocol's own typed errors.
 *
 *   const bind = RunCommands.bind(AgentProtocol)
 *   const handlers = {
 *     start: bind.start("start", Research, { input: (p) => ({ query: p.query }), result: (run) => run }),
 *     cancel: bind.cancel("cancel", { ... }),
 *     feedback: bind.answer("feedback", Research, { ... })
 *   }
 */
import { Effect } from "effect"
import type { CommandUnavailable } from "../protocol/CommandUnavailable.ts"
import type {
  AnyProtocol,
  CommandError,
  CommandName,
  CommandPayload,
  CommandResult,
  LatestOf
} from "../protocol/Protocol.ts"
import { type CancelOutcome, RunClient, type StartedRun } from "../runs/RunClient.ts"
import type { AnswerOf, AnyRunDefinition, InputOf } from "../runs/RunDefinition.ts"
import type { CommandContext, Handler } from "./Handlers.ts"

type Payload<P extends AnyProtocol, K extends CommandName<LatestOf<P>>> = CommandPayload<LatestOf<P>, K>
type Result<P extends AnyProtocol, K extends CommandName<LatestOf<P>>> = CommandResult<LatestOf<P>, K>
type Failure<P extends AnyProtocol, K extends CommandName<LatestOf<P>>> = CommandError<LatestOf<P>, K>

/** A value, or an effect that computes it or fails with the command's typed error. */
type Computed<A, E> = A | Effect.Effect<A, E>

const computed = <A, E>(value: Computed<A, E>): Effect.Effect<A, E> =>
  Effect.isEffect(value) ? value : Effect.succeed(value)

export interface StartBinding<P extends AnyProtocol, K extends CommandName<LatestOf<P>>, D extends AnyRunDefinition> {
  /** The run's input from the command's payload (or the command's typed error, to refuse it). */
  readonly input: (payload: Payload<P, K>, context: CommandContext<P>) => Computed<InputOf<D>, Failure<P, K>>
  /** The command's result once a worker has begun the run. */
  readonly result: (run: StartedRun) => Result<P, K>
  /** The run's channel from its id (default `run:<id>`). */
  readonly channel?: (runId: string) => string
  /** At most this many runs going per user; `error` is what a start beyond it answers. */
  readonly limit?: { readonly perUser: number; readonly error: (limit: number) => Failure<P, K> }
}

export interface CancelBinding<P extends AnyProtocol, K extends CommandName<LatestOf<P>>> {
  readonly runId: (payload: Payload<P, K>) => string
  readonly reason?: (payload: Payload<P, K>) => string | undefined
  readonly result: (outcome: CancelOutcome) => Result<P, K>
  readonly notFound: (runId: string) => Failure<P, K>
  readonly notOwner: (runId: string) => Failure<P, K>
}

/** Which checkpoint of which run a command answers, and with what. */
export interface AnswerTarget<A> {
  readonly runId: string
  readonly checkpoint: string
  readonly answer: A
}

export interface AnswerBinding<P extends AnyProtocol, K extends CommandName<LatestOf<P>>, D extends AnyRunDefinition> {
  /** What the command answers (or the command's typed error, for a target the run cannot take). */
  readonly target: (payload: Payload<P, K>) => Computed<AnswerTarget<AnswerOf<D>>, Failure<P, K>>
  readonly result: () => Result<P, K>
  readonly notFound: (runId: string) => Failure<P, K>
  readonly notOwner: (runId: string) => Failure<P, K>
  readonly notPending: (runId: string, checkpoint: string) => Failure<P, K>
}

type RunHandler<P extends AnyProtocol, K extends CommandName<LatestOf<P>>> = Handler<P, K, RunClient>

/** The binders for one protocol; the command's name comes first so that everything after it is typed. */
export const bind = <P extends AnyProtocol>(_protocol: P) => ({
  start:
    <K extends CommandName<LatestOf<P>>, D extends AnyRunDefinition>(
      _command: K,
      run: D,
      binding: StartBinding<P, K, D>
    ): RunHandler<P, K> =>
    (payload, context) =>
      Effect.gen(function* () {
        const client = yield* RunClient
        const input = yield* computed(binding.input(payload, context))
        const started = yield* client
          .start(run, {
            owner: context.user,
            input,
            ...(binding.channel ? { channel: binding.channel } : {}),
            ...(binding.limit ? { maxActive: binding.limit.perUser } : {})
          })
          .pipe(
            Effect.catchTag("RunLimitExceeded", (error) =>
              Effect.fail(binding.limit!.error(error.limit) as Failure<P, K> | CommandUnavailable)
            )
          )
        return binding.result(started)
      }),

  cancel:
    <K extends CommandName<LatestOf<P>>>(_command: K, binding: CancelBinding<P, K>): RunHandler<P, K> =>
    (payload, context) =>
      Effect.gen(function* () {
        const client = yield* RunClient
        const runId = binding.runId(payload)
        const outcome = yield* client.cancel(runId, { user: context.user, reason: binding.reason?.(payload) }).pipe(
          Effect.catchTags({
            RunNotFound: () => Effect.fail(binding.notFound(runId)),
            NotRunOwner: () => Effect.fail(binding.notOwner(runId))
          })
        )
        return binding.result(outcome)
      }),

  answer:
    <K extends CommandName<LatestOf<P>>, D extends AnyRunDefinition>(
      _command: K,
      run: D,
      binding: AnswerBinding<P, K, D>
    ): RunHandler<P, K> =>
    (payload, context) =>
      Effect.gen(function* () {
        const client = yield* RunClient
        const target = yield* computed(binding.target(payload))
        yield* client.answer(run, target.runId, target.checkpoint, target.answer, { user: context.user }).pipe(
          Effect.catchTags({
            RunNotFound: () => Effect.fail(binding.notFound(target.runId)),
            NotRunOwner: () => Effect.fail(binding.notOwner(target.runId)),
            CheckpointNotPending: () => Effect.fail(binding.notPending(target.runId, target.checkpoint))
          })
        )
        return binding.result()
      })
})
