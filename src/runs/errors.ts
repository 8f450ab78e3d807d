/**
 * What a command on a run can fail with, as the gateway sees it (RunClient.ts). Protocol bindings
 * (RunCommands.ts) turn each into the protocol's own typed error; `unavailable` (no worker took a run, the run
 * storage is unreachable) is protocol/CommandUnavailable.ts, answered the same way for every command.
 */
import { Schema } from "effect"

/** No run has this id (or it was forgotten: finished runs are kept for `finishedRetentionMs`). */
export class RunNotFound extends Schema.TaggedError<RunNotFound>()("RunNotFound", {
  runId: Schema.String
}) {
  override get message(): string {
    return `no run ${this.runId}`
  }
}

/** The run belongs to another user: only its owner may cancel it or answer its checkpoints. */
export class NotRunOwner extends Schema.TaggedError<NotRunOwner>()("NotRunOwner", {
  runId: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId} belongs to another user`
  }
}

/** The run is not waiting at this checkpoint (never reached it yet, already answered, or finished). */
export class CheckpointNotPending extends Schema.TaggedError<CheckpointNotPending>()("CheckpointNotPending", {
  runId: Schema.String,
  checkpoint: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId} is not waiting at checkpoint ${this.checkpoint}`
  }
}

/** The owner already has `limit` runs going; one must finish (or be cancelled) first. */
export class RunLimitExceeded extends Schema.TaggedError<RunLimitExceeded>()("RunLimitExceeded", {
  limit: Schema.Int
}) {
  override get message(): string {
    return `already ${this.limit} runs going for this user`
  }
}

/** The run storage (the database behind runs) failed or did not answer in time. Retryable. */
export class RunStorageError extends Schema.TaggedError<RunStorageError>()("RunStorageError", {
  message: Schema.String
}) {}
