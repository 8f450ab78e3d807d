/**
 * Declaring a run: its name, the protocol whose events it publishes, the Schema of what starts it and of the
 * answers its checkpoints take. A definition is shared by gateways (which start, cancel and answer runs) and
 * workers (which implement it, RunWorker.ts); underneath it is an Effect Workflow whose execution id is derived
 * from the run id, so any process can address a run knowing only its id.
 */
import { createHash } from "node:crypto"
import { Effect, Schema } from "effect"
import { DurableDeferred, Workflow } from "effect/workflow"
import type { AnyProtocol } from "../protocol/Protocol.ts"

/** What a checkpoint's deferred carries: the answer and who gave it (the user id, or null when anonymous). */
export const answerEnvelope = <A extends Schema.Top>(answer: A) =>
  Schema.Struct({ answer, by: Schema.NullOr(Schema.String) })

const payloadOf = <I extends Schema.Top>(input: I) =>
  Schema.Struct({
    runId: Schema.String,
    owner: Schema.NullOr(Schema.String),
    channel: Schema.String,
    input
  })

export interface RunDefinition<
  Name extends string,
  P extends AnyProtocol,
  Input extends Schema.Top,
  Answer extends Schema.Top
> {
  readonly name: Name
  readonly protocol: P
  readonly input: Input
  readonly answer: Answer
  /** The Effect Workflow underneath; its payload is the run id, owner, channel and input. */
  readonly workflow: Workflow.Workflow<
    Name,
    ReturnType<typeof payloadOf<Input>>,
    typeof Schema.Void,
    typeof Schema.Never
  >
  /** The execution id of run `runId` (a hash of the definition's name and the id). */
  readonly executionId: (runId: string) => Effect.Effect<string>
  /** The durable deferred behind checkpoint `id`. */
  readonly checkpoint: (id: string) => DurableDeferred.DurableDeferred<ReturnType<typeof answerEnvelope<Answer>>>
}

/** Any definition, for collections (the runs a gateway knows). */
// biome-ignore lint/suspicious/noExplicitAny: a collection of definitions of every input and answer type
export type AnyRunDefinition = RunDefinition<string, AnyProtocol, any, any>

export type InputOf<D> = D extends { readonly input: infer I extends Schema.Top } ? I["Type"] : never
export type AnswerOf<D> = D extends { readonly answer: infer A extends Schema.Top } ? A["Type"] : never
export type ProtocolOf<D> = D extends { readonly protocol: infer P extends AnyProtocol } ? P : never

/** A name for step, checkpoint and definition names: what a log line and a storage key can hold as it is. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/

export const checkName = (kind: string, name: string): void => {
  if (!NAME.test(name)) {
    throw new Error(
      `${kind} name "${name}": use 1–64 letters, digits, '_', '.', ':' or '-' (starting with a letter or digit)`
    )
  }
}

/**
 * The execution id Effect Workflow derives from a workflow's name and idempotency key (the run id): the first 16
 * bytes of a SHA-256, in hex. Computed here from the id alone, so a gateway needs no payload to address a run;
 * test/runs/RunDefinition.test.ts checks it against `Workflow.executionId`.
 */
export const executionIdOf = (name: string, runId: string): string =>
  createHash("sha256").update(`${name.length}:${name}:${runId}`).digest("hex").slice(0, 32)

/**
 * Declares a run. `input` is what a `start` hands the run (validated, stored with it); `answer` is what its
 * checkpoints accept (default: any JSON).
 */
export const make = <
  const Name extends string,
  P extends AnyProtocol,
  Input extends Schema.Top,
  Answer extends Schema.Top = typeof Schema.Json
>(
  protocol: P,
  name: Name,
  options: { readonly input: Input; readonly answer?: Answer }
): RunDefinition<Name, P, Input, Answer> => {
  checkName("run", name)
  const answer = (options.answer ?? Schema.Json) as Answer
  const envelope = answerEnvelope(answer)
  const workflow = Workflow.make(name, {
    payload: payloadOf(options.input),
    // the payload's type depends on Input, which TypeScript cannot resolve here; its runId is always a string
    idempotencyKey: ((payload: { readonly runId: string }) => payload.runId) as never
  })
  const deferreds = new Map<string, DurableDeferred.DurableDeferred<typeof envelope>>()
  return {
    name,
    protocol,
    input: options.input,
    answer,
    workflow,
    executionId: (runId) => Effect.sync(() => executionIdOf(name, runId)),
    checkpoint: (id) => {
      let deferred = deferreds.get(id)
      if (deferred === undefined) {
        deferred = DurableDeferred.make(`checkpoint/${id}`, { success: envelope })
        deferreds.set(id, deferred)
      }
      return deferred
    }
  }
}
