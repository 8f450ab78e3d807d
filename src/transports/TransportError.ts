/** The error every transport operation fails with: its server is unreachable or refused the operation. */
import { Schema } from "effect"

/** The transport's server is unreachable or refused the operation. Retryable. */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  message: Schema.String,
  retryable: Schema.Boolean
}) {}
