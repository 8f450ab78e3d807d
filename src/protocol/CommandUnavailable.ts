/**
 * The one failure every command may have besides its own typed errors: it cannot run now, for a reason that
 * passes (no worker is up to take a run, the database behind runs is unreachable). The server answers it with
 * an `error` frame of code `unavailable` carrying `retryAfterMs`, never with the command's error schema, so a
 * protocol need not declare it and every client handles it the same way: wait, then send the command again.
 */
import { Schema } from "effect"

export class CommandUnavailable extends Schema.TaggedError<CommandUnavailable>()("CommandUnavailable", {
  message: Schema.String,
  retryAfterMs: Schema.Int
}) {}

export const isCommandUnavailable = (value: unknown): value is CommandUnavailable => value instanceof CommandUnavailable
