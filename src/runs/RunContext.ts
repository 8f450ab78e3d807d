/**
 * What a run's body works with: its identity, typed publishing that is exactly-once across crashes, steps
 * (Effect Activities: run once, remembered, never repeated once complete), streams that restart cleanly, and
 * checkpoints that wait for a human's answer (Durable Deferreds). Built by RunWorker.ts for each execution of the
 * body; the body replays after every suspension, so names and order must be the same each time (as in any
 * Effect Workflow).
 */
import { Clock, Effect, Schema } from "effect"
import { Activity, DurableDeferred, type WorkflowEngine } from "effect/workflow"
import type { Position } from "../protocol/Position.ts"
import type { AnyProtocol, EventData, EventName, LatestOf } from "../protocol/Protocol.ts"
import type { Publisher } from "../transports/Publisher.ts"
import { durably } from "./Durably.ts"
import { RunStorageError } from "./errors.ts"
import { CurrentStep, publishAt, type StepPlace, streamAt } from "./Publications.ts"
import { checkName, type RunDefinition } from "./RunDefinition.ts"
import type { RunDirectoryShape } from "./RunDirectory.ts"
import type { RunsStatusShape } from "./RunsStatus.ts"
import type { StepResults } from "./StepResults.ts"

/** What the body's effects need beyond their own: provided by the workflow engine while the run executes. */
export type RunEnv = WorkflowEngine.WorkflowEngine | WorkflowEngine.WorkflowInstance

type Latest<P extends AnyProtocol> = LatestOf<P>

/** A stream of chunks of one event (a message streamed piece by piece). */
export interface RunStream<P extends AnyProtocol, K extends EventName<Latest<P>>> {
  /** Publishes the next chunk. */
  readonly publish: (data: EventData<Latest<P>, K>) => Effect.Effect<Position>
}

/** An answered checkpoint: the answer and who gave it (user id; null when anonymous). */
export interface Answered<A> {
  readonly answer: A
  readonly by: string | null
}

export interface RunContext<P extends AnyProtocol, Answer> {
  readonly runId: string
  /** The user who started the run (token subject), or null. */
  readonly owner: string | null
  /** Where the run's events go by default (`run:<runId>` unless the start chose another). */
  readonly channel: string
  readonly executionId: string

  /**
   * Publishes an event to the run's channel, exactly once: inside a step at the step's next place (a re-executed
   * step's earlier publications are not repeated); outside a step as a step of its own. Waits out a broker
   * that is down (up to the retry deadline); an event the protocol rejects is a defect that fails the run.
   */
  readonly publish: <K extends EventName<Latest<P>>>(
    event: K,
    data: EventData<Latest<P>, K>
  ) => Effect.Effect<Position, never, RunEnv>

  /** `publish` to another channel (a user's personal channel, say). */
  readonly publishTo: <K extends EventName<Latest<P>>>(
    channel: string,
    event: K,
    data: EventData<Latest<P>, K>
  ) => Effect.Effect<Position, never, RunEnv>

  /**
   * Runs `effect` as a step: an Activity named `name` (repeated names get `#2`, `#3`... in order), executed once
   * and remembered — after a crash a completed step is not run again and a replay gets its stored result. A
   * step that returns a value needs its `success` schema; one that may fail needs its `error` schema (a failure
   * it cannot store is a defect, which fails the run). Publish inside a step sequentially.
   */
  readonly step: {
    <E = never, R = never>(
      name: string,
      effect: Effect.Effect<void, E, R>,
      options?: { readonly error?: Schema.Codec<E, unknown> }
    ): Effect.Effect<void, E, R | RunEnv>
    <A, E = never, R = never>(
      name: string,
      effect: Effect.Effect<A, E, R>,
      options: { readonly success: Schema.Codec<A, unknown>; readonly error?: Schema.Codec<E, unknown> }
    ): Effect.Effect<A, E, R | RunEnv>
  }

  /**
   * A stream of chunks of `event`, inside a step. If the step is re-executed after the stream had begun, the
   * stream starts over: its first chunk goes out through `restart` (the application's marker that tells clients to
   * drop the partial message, e.g. `{ ...chunk, restart: true }`), then the new chunks follow.
   */
  readonly stream: <K extends EventName<Latest<P>>>(
    event: K,
    options: {
      readonly restart: (first: EventData<Latest<P>, K>) => EventData<Latest<P>, K>
      readonly channel?: string
    }
  ) => Effect.Effect<RunStream<P, K>>

  /**
   * Waits at checkpoint `id` for an answer (a client's command, through any gateway). The checkpoint opens
   * first, then `announce` runs (publish what asks the human there: an answer cannot arrive too early), then
   * the run suspends until the answer; it resumes on whichever worker holds it then.
   */
  readonly checkpoint: <E = never, R = never>(
    id: string,
    announce?: Effect.Effect<void, E, R>
  ) => Effect.Effect<Answered<Answer>, E, R | RunEnv>
}

export interface RunServices {
  readonly publisher: Publisher
  readonly directory: RunDirectoryShape
  readonly status: RunsStatusShape
  readonly retryMs: number
  /** This worker's completed steps, for replays of the bodies it executes (StepResults.ts). */
  readonly results: StepResults
}

/** Directory writes from inside a run: retried like publications (they are conditional, so retries are safe). */
export const persist = <A>(what: string, effect: Effect.Effect<A, RunStorageError>, retryMs: number) =>
  durably(what, effect, (error) => error instanceof RunStorageError, retryMs)

export const make = <P extends AnyProtocol, Answer>(
  definition: RunDefinition<string, P, Schema.Top, Schema.Top>,
  run: {
    readonly runId: string
    readonly owner: string | null
    readonly channel: string
    readonly executionId: string
  },
  services: RunServices
): RunContext<P, Answer> => {
  const { publisher, directory, status, retryMs, results } = services
  const seen = new Map<string, number>()
  /** A step's name in this execution: the second "think" is "think#2". Deterministic as the body is. */
  const uniqueName = (name: string): string => {
    const n = (seen.get(name) ?? 0) + 1
    seen.set(name, n)
    return n === 1 ? name : `${name}#${n}`
  }

  const stepNamed = <A, E, R>(
    name: string,
    effect: Effect.Effect<A, E, R>,
    success: Schema.Top | undefined,
    error: Schema.Top | undefined
  ): Effect.Effect<A, E, R | RunEnv> => {
    const key = `${run.executionId}/${name}`
    const activity = Activity.make({
      name,
      ...(success === undefined ? {} : { success }),
      ...(error === undefined ? {} : { error }),
      // a fresh place per execution of the step: a re-execution publishes at the same places again
      execute: Effect.suspend(() => Effect.provideService(effect, CurrentStep, { key, next: 0 }))
    }) as unknown as Effect.Effect<A, E, R | RunEnv>
    return Effect.suspend(() => {
      const known = results.get(run.executionId, name)
      if (known !== undefined) return Effect.succeed(known.value as A)
      return Effect.tap(activity, (value) => Effect.sync(() => results.set(run.executionId, name, value)))
    })
  }

  const step: RunContext<P, Answer>["step"] = (
    name: string,
    effect: Effect.Effect<unknown, unknown, unknown>,
    options?: { readonly success?: Schema.Top; readonly error?: Schema.Top }
  ) => {
    checkName("step", name)
    return stepNamed(uniqueName(name), effect, options?.success, options?.error)
  }

  const publishTo = (channel: string, event: string, data: unknown): Effect.Effect<Position, never, RunEnv> =>
    Effect.flatMap(Effect.service(CurrentStep), (place: StepPlace | undefined) =>
      place !== undefined
        ? publishAt(publisher, place, channel, event, data, retryMs)
        : // outside a step, a publication is a step of its own, so a replay of the body does not repeat it
          stepNamed(
            uniqueName("tidings.publish"),
            Effect.flatMap(Effect.service(CurrentStep), (own) =>
              publishAt(publisher, own!, channel, event, data, retryMs)
            ),
            PositionSchema,
            undefined
          )
    )

  return {
    ...run,
    publish: (event, data) => publishTo(run.channel, event, data),
    publishTo,
    step,
    stream: (event, options) =>
      Effect.flatMap(Effect.service(CurrentStep), (place) =>
        place === undefined
          ? Effect.die(
              new Error(`run ${definition.name}: stream("${event}") outside a step; stream inside run.step(...)`)
            )
          : Effect.succeed(
              streamAt(
                publisher,
                place,
                options.channel ?? run.channel,
                event,
                options.restart as (first: unknown) => unknown,
                retryMs
              )
            )
      ),
    checkpoint: <E, R>(id: string, announce?: Effect.Effect<void, E, R>) => {
      checkName("checkpoint", id)
      const open = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        persist(
          "opening a checkpoint",
          directory.transition(run.runId, { from: ["running"], to: "awaiting_input", at: id }, now),
          retryMs
        )
      ).pipe(
        Effect.tap((opened) =>
          opened
            ? status.transition({ runId: run.runId, definition: definition.name }, "awaiting_input", id)
            : Effect.void
        ),
        Effect.andThen(announce ?? Effect.void)
      )
      return Effect.gen(function* () {
        yield* stepNamed(uniqueName(`tidings.checkpoint.${id}`), open, undefined, undefined)
        // the gateway that took the answer moved the run back to running, and logged it
        return (yield* DurableDeferred.await(definition.checkpoint(id))) as Answered<Answer>
      })
    }
  } as RunContext<P, Answer>
}

const PositionSchema = Schema.Struct({ epoch: Schema.String, offset: Schema.Number })
