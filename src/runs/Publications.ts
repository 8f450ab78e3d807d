/**
 * Exactly-once publishing from a run. Every publication a run makes has a place: the step (activity) it is made
 * in and its index among that step's publications. The place, with the execution id, is the append's
 * idempotency key, so a step re-executed after a crash publishes again and the transport keeps only the first
 * append of each place: a deterministic step leaves the log exactly as an uninterrupted one would.
 *
 * A streamed message is not deterministic (an LLM answers differently the second time), so streams restart
 * instead: a stream's first chunk takes one place; if a re-execution finds that place already taken, the stream
 * starts over under a fresh identity and its first chunk is the application's restart marker, telling clients to
 * drop what they had of that message. docs/runs.md states what a client sees.
 */
import { randomBytes } from "node:crypto"
import { Context, Effect } from "effect"
import type { Position } from "../protocol/Position.ts"
import type { Publisher } from "../transports/Publisher.ts"
import { durably } from "./Durably.ts"

/** The step a fiber publishes from: its key (execution id and step name) and the next publication's index. */
export interface StepPlace {
  readonly key: string
  next: number
}

/** The step the current fiber runs in, if any (provided by RunContext's `step`). */
export const CurrentStep = Context.Reference<StepPlace | undefined>("tidings/runs/CurrentStep", {
  defaultValue: () => undefined
})

export interface Appended {
  readonly position: Position
  /** The place was already taken by an earlier execution: nothing new was appended. */
  readonly duplicate: boolean
}

/**
 * Appends once per `key`, retrying a failed append (same key, so a retry of an append that did land returns it).
 * A duplicate answered after one of this call's own tries failed is this call's append, not an earlier one's.
 */
export const appendKeyed = (
  publisher: Publisher,
  channel: string,
  event: string,
  data: unknown,
  key: string,
  retryMs?: number
): Effect.Effect<Appended> =>
  Effect.suspend(() => {
    let tries = 0
    const attempt = Effect.suspend(() => {
      tries++
      return publisher.append(channel, event, data, { idempotencyKey: key })
    })
    return durably(
      `publishing ${event} to ${channel}`,
      attempt,
      (error) => error._tag === "TransportError" && error.retryable,
      retryMs
    ).pipe(
      Effect.map((entry) => ({
        position: { epoch: entry.epoch, offset: entry.offset },
        duplicate: entry.duplicate === true && tries === 1
      }))
    )
  })

/** Publishes at the next place of `step`. */
export const publishAt = (
  publisher: Publisher,
  step: StepPlace,
  channel: string,
  event: string,
  data: unknown,
  retryMs?: number
): Effect.Effect<Position> =>
  Effect.suspend(() => {
    const key = `${step.key}/${step.next++}`
    return Effect.map(appendKeyed(publisher, channel, event, data, key, retryMs), (appended) => appended.position)
  })

/** A stream of chunks of one event, in one step: see the module doc for what a re-execution does. */
export interface StreamPlace {
  readonly publish: (data: unknown) => Effect.Effect<Position>
}

export const streamAt = (
  publisher: Publisher,
  step: StepPlace,
  channel: string,
  event: string,
  restart: (data: unknown) => unknown,
  retryMs?: number
): StreamPlace => {
  const base = `${step.key}/${step.next++}`
  /** "" while this execution owns the stream's first place; a fresh tag once it had to start over. */
  let tag: string | undefined
  let chunk = 0
  return {
    publish: (data) =>
      Effect.suspend(() => {
        if (tag !== undefined) {
          return Effect.map(
            appendKeyed(publisher, channel, event, data, `${base}/${tag}/${chunk++}`, retryMs),
            (a) => a.position
          )
        }
        tag = ""
        chunk = 1
        return Effect.flatMap(appendKeyed(publisher, channel, event, data, base, retryMs), (first) => {
          if (!first.duplicate) return Effect.succeed(first.position)
          // An earlier execution began this stream: begin again, under a tag of this execution's own.
          tag = randomBytes(6).toString("base64url")
          return Effect.map(
            appendKeyed(publisher, channel, event, restart(data), `${base}/${tag}/0`, retryMs),
            (a) => a.position
          )
        })
      })
  }
}
