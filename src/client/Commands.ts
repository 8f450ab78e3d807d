/**
 * Commands in flight: ids, the `command` frame waiting for a connection, reply correlation, timeouts and
 * cancellation.
 *
 * A command is sent once. If the connection drops after it was sent, it fails with Disconnected and is never
 * re-sent (the server may or may not have run it; only the caller knows whether running it twice is safe).
 * A command issued while the client is (re)connecting waits, unsent, until the next welcome. Encoding and
 * decoding payloads is the caller's (Client.ts, with the protocol codec). A frame is built when it is sent, for the
 * wire codec of the connection it goes out on (a payload's Bytes fields are raw bytes for MessagePack).
 */
import type { Codec } from "../protocol/Negotiation.ts"
import { CommandFailed, CommandRejected, CommandTimeout, Disconnected, ProtocolViolation } from "./errors.ts"

/** Decodes a reply's result or typed error, or returns a violation when it does not match the schema. */
export type ReplyDecoder = (reply: {
  readonly ok: boolean
  readonly result?: unknown
  readonly error?: unknown
}) =>
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown }
  | ProtocolViolation

/** Builds a frame for the wire codec of the connection it is sent on. */
export type FrameBuilder = (wire: Codec) => object

interface Pending {
  readonly name: string
  readonly frame: FrameBuilder
  readonly decode: ReplyDecoder
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
  sent: boolean
  timer: ReturnType<typeof setTimeout> | undefined
  cleanup: (() => void) | undefined
}

export interface IssueOptions {
  readonly timeoutMs?: number | undefined
  readonly signal?: AbortSignal | undefined
}

export class Commands {
  private readonly pending = new Map<string, Pending>()
  private seq = 0

  constructor(
    /** Sends a frame when connected; returns false when there is no open connection. */
    private readonly send: (frame: FrameBuilder) => boolean
  ) {}

  get size(): number {
    return this.pending.size
  }

  /** Registers a command and sends it now or on the next welcome; `payload` gives its encoded form per codec. */
  issue(
    name: string,
    payload: (wire: Codec) => unknown,
    decode: ReplyDecoder,
    options: IssueOptions
  ): Promise<unknown> {
    return this.request(name, (id, wire) => ({ type: "command", id, name, payload: payload(wire) }), decode, options)
  }

  /**
   * A request of another kind that is answered by id like a command (a presence query): `frame` builds it from its
   * id; its answer comes in through `reply`, or `rejected` for an error frame. `name` names it in errors.
   */
  request(
    name: string,
    frame: (id: string, wire: Codec) => object,
    decode: ReplyDecoder,
    options: IssueOptions
  ): Promise<unknown> {
    const id = `c${++this.seq}`
    const build: FrameBuilder = (wire) => frame(id, wire)
    return new Promise((resolve, reject) => {
      if (options.signal?.aborted) return reject(options.signal.reason)
      const entry: Pending = {
        name,
        frame: build,
        decode,
        resolve,
        reject,
        sent: false,
        timer: undefined,
        cleanup: undefined
      }
      this.pending.set(id, entry)
      if (options.timeoutMs !== undefined) {
        const timeoutMs = options.timeoutMs
        entry.timer = setTimeout(
          () => this.settle(id, false, new CommandTimeout({ command: name, timeoutMs })),
          timeoutMs
        )
      }
      const signal = options.signal
      if (signal !== undefined) {
        const onAbort = () => this.settle(id, false, signal.reason)
        signal.addEventListener("abort", onAbort, { once: true })
        entry.cleanup = () => signal.removeEventListener("abort", onAbort)
      }
      entry.sent = this.send(build)
    })
  }

  /** Sends every command still waiting for a connection, in the order they were issued. */
  sendQueued(): void {
    for (const entry of this.pending.values()) {
      if (!entry.sent) entry.sent = this.send(entry.frame)
    }
  }

  /** A `reply` frame. Unknown ids (a timed-out or cancelled command) are ignored. */
  reply(id: string, reply: { readonly ok: boolean; readonly result?: unknown; readonly error?: unknown }): void {
    const entry = this.pending.get(id)
    if (entry === undefined) return
    const decoded = entry.decode(reply)
    if (decoded instanceof ProtocolViolation) return this.settle(id, false, decoded)
    if (decoded.ok) return this.settle(id, true, decoded.value)
    this.settle(id, false, new CommandFailed({ command: entry.name, error: decoded.error }))
  }

  /** An `error` frame naming a command id. Returns false when no command has that id. */
  rejected(
    id: string,
    error: {
      code: CommandRejected["code"]
      message: string
      path: ReadonlyArray<string | number>
      retryAfterMs?: number | undefined
    }
  ) {
    const entry = this.pending.get(id)
    if (entry === undefined) return false
    const { retryAfterMs, ...rest } = error
    this.settle(
      id,
      false,
      new CommandRejected({ command: entry.name, ...rest, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
    )
    return true
  }

  /** The connection dropped: every command already sent fails; unsent ones wait for the next connection. */
  disconnected(reason: string): void {
    for (const [id, entry] of this.pending) {
      if (entry.sent) this.settle(id, false, new Disconnected({ reason }))
    }
  }

  /** The client closed: every command fails. */
  closed(reason: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, false, new Disconnected({ reason }))
  }

  private settle(id: string, ok: boolean, value: unknown): void {
    const entry = this.pending.get(id)
    if (entry === undefined) return
    this.pending.delete(id)
    if (entry.timer !== undefined) clearTimeout(entry.timer)
    entry.cleanup?.()
    if (ok) entry.resolve(value)
    else entry.reject(value)
  }
}
