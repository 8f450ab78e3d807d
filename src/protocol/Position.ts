/**
 * Positions in a channel's log: `{ epoch, offset }`.
 *
 * Offsets are contiguous per channel, starting at 1 for the first entry of an epoch. An epoch is an opaque
 * string that changes whenever a transport loses a channel's history (restart, flush, eviction, stream
 * re-creation): a position from another epoch can never be resumed from, and the client is told so with a
 * `reset`. Offset 0 means "before the first entry".
 */
import { Schema } from "effect"

export const Epoch = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)).annotate({
  description: "Opaque id of one incarnation of a channel's log"
})

export const Offset = Schema.Int.check(
  Schema.isGreaterThanOrEqualTo(0),
  Schema.isLessThanOrEqualTo(Number.MAX_SAFE_INTEGER)
).annotate({
  description: "Contiguous per-channel offset; 0 is before the first entry"
})

export const Position = Schema.Struct({ epoch: Epoch, offset: Offset }).annotate({ identifier: "Position" })
export type Position = typeof Position.Type

export const make = (epoch: string, offset: number): Position => ({ epoch, offset })

/** True when `a` and `b` belong to the same epoch and `a` is strictly before `b`. */
export const isBefore = (a: Position, b: Position): boolean => a.epoch === b.epoch && a.offset < b.offset

/** True when `a` and `b` are the same position. */
export const equals = (a: Position, b: Position): boolean => a.epoch === b.epoch && a.offset === b.offset
