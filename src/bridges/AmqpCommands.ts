/**
 * Protocol commands sent out to RabbitMQ (AMQP 0-9-1, amqplib) instead of answered by a handler in the gateway.
 * Each binding is an ordinary command handler (src/server/Handlers.ts), so AMQP-bound commands sit beside local
 * ones in one `Handlers` object; the connections they publish on belong to `AmqpCommands.layer` (one per URL,
 * opened at the first command, opened again after a drop, closed with the layer):
 *
 *   const handlers = {
 *     ...AmqpCommands.handlers(Jobs, { url, exchange: "jobs", commands: { cancel: { routingKey: "cancel.{runId}" } } }),
 *     ping: local
 *   }
 *   Server.layer({ protocol: Jobs, handlers, ... }).pipe(Layer.provide(AmqpCommands.layer))
 *
 * A command becomes one message on `exchange` (declared durable if missing, `exchangeType` default topic) with the
 * binding's routing key, whose `{field}` / `{a.b}` placeholders are filled from the payload. The body is the payload
 * as JSON, encoded in the protocol's newest version (`content-type: application/json`); the properties carry a
 * fresh `messageId`, `type` (the command's name) and `appId` `tidings`, and the headers `x-tidings-protocol`,
 * `x-tidings-version`, `x-tidings-command`, `x-tidings-session`, `x-tidings-connection` and, unless the caller is
 * anonymous, `x-tidings-user` (the token's subject). Every publish is `mandatory` and waits for the broker's
 * publisher confirm.
 *
 * - `fire-and-forget` (the default): persistent messages. The command succeeds once the broker has confirmed the
 *   message, that is once a queue holds it; the consumer's work is not awaited. Its result therefore says only
 *   "accepted": the binding's `result` constant, or, without one, the command's result decoded from `{}` (a result
 *   schema of optional fields or none). A binding whose result does not fit the command's result schema is refused
 *   when the handlers are built.
 * - `reply`: the message carries `replyTo: amq.rabbitmq.reply-to` (RabbitMQ's direct reply-to), a `correlationId`
 *   and an `expiration` of `replyTimeoutMs` (so a late consumer never sees a request nobody waits for). The consumer
 *   answers on `replyTo` with the same `correlationId` and a JSON body `{"ok": true, "result": …}` or
 *   `{"ok": false, "error": …}`, decoded with the command's result or error schema (the latter is the command's
 *   typed error).
 *
 * Failures: no connection to the broker, a publish the broker refused or did not confirm in time, a message no
 * queue takes (unroutable), a lost connection and, in reply mode, no answer within `replyTimeoutMs` fail with
 * CommandUnavailable (the client gets `unavailable` with `retryAfterMs`). An answer that is not JSON or not the
 * command's result or error, and a routing key the payload cannot fill (a placeholder it lacks, a value with a `.`,
 * which would add words to a topic key, or over 255 bytes in all) are defects (AmqpCommandFailed: the
 * client gets `internal`, the log says what happened). Nothing is retried here: the consumer may have acted on a
 * message whose confirm or answer was lost.
 */
import { randomUUID } from "node:crypto"
import { type ChannelModel, type ConfirmChannel, type ConsumeMessage, connect, type Message } from "amqplib"
import { Context, Data, Effect, Layer, Result } from "effect"
import { CommandUnavailable } from "../protocol/CommandUnavailable.ts"
import type { AnyProtocol, CommandName, CommandResult, LatestOf } from "../protocol/Protocol.ts"
import { ProtocolCodec } from "../protocol/ProtocolCodec.ts"
import * as WorkerAnswer from "../server/forward/WorkerAnswer.ts"
import type { CommandContext, Handler } from "../server/Handlers.ts"
import { errorText, safeUrl, withHeartbeat } from "./AmqpBridge.ts"

export type AmqpCommandMode = "fire-and-forget" | "reply"

export interface AmqpCommandBinding<P extends AnyProtocol, K extends CommandName<LatestOf<P>>> {
  /** The routing key, with `{field}` / `{a.b}` placeholders filled from the (encoded) payload. */
  readonly routingKey: string
  /** Another exchange than the options' one, for this command. */
  readonly exchange?: string
  /** Another mode than the options' one, for this command. */
  readonly mode?: AmqpCommandMode
  /** Fire-and-forget: the command's result once the broker has confirmed the message (default: `{}` decoded). */
  readonly result?: CommandResult<LatestOf<P>, K>
}

export interface AmqpCommandsOptions {
  /** `amqp://user:password@host:port/vhost` (`?heartbeat=N`; default 10 s). */
  readonly url: string
  readonly exchange: string
  /** The exchange's type, when it is declared (default topic). */
  readonly exchangeType?: "topic" | "direct" | "fanout" | "headers"
  /** Default fire-and-forget. */
  readonly mode?: AmqpCommandMode
  /** How long a reply-mode command waits for its answer (default 10,000 ms). */
  readonly replyTimeoutMs?: number
  /** How long connecting and a publisher confirm may take (default 5,000 ms). */
  readonly brokerTimeoutMs?: number
  /** The retry delay an `unavailable` answer carries (default 1,000 ms). */
  readonly retryAfterMs?: number
}

export type AmqpCommandBindings<P extends AnyProtocol> = {
  readonly [K in CommandName<LatestOf<P>>]?: AmqpCommandBinding<P, K>
}

export type AmqpHandlers<P extends AnyProtocol, K extends CommandName<LatestOf<P>>> = {
  readonly [Q in K]: Handler<P, Q, AmqpLinks>
}

/** The consumer answered something the contract does not allow; a defect, which the client gets as `internal`. */
export class AmqpCommandFailed extends Data.TaggedError("AmqpCommandFailed")<{
  readonly command: string
  readonly message: string
}> {}

// ---- connections ---------------------------------------------------------------------------------------------------

/** An answer, or why none can come. */
type Answer = { readonly ok: true; readonly message: ConsumeMessage } | { readonly ok: false; readonly reason: string }

/** One open connection with its confirm channel, which also consumes direct replies. */
class Live {
  open = true
  /** Why it closed. */
  reason = "the connection to the broker closed"
  /** Reply-mode commands waiting, by correlationId. */
  readonly waiting = new Map<string, (answer: Answer) => void>()
  /** Messages the broker returned as unroutable, by messageId (a return comes before its confirm). */
  readonly returned = new Map<string, string>()
  readonly declared = new Set<string>()

  constructor(
    readonly connection: ChannelModel,
    readonly channel: ConfirmChannel
  ) {}

  fail(reason: string): void {
    if (!this.open) return
    this.open = false
    this.reason = reason
    for (const settle of this.waiting.values()) settle({ ok: false, reason })
    this.waiting.clear()
  }
}

const openLive = async (url: string, timeoutMs: number): Promise<Live> => {
  const connection = await connect(withHeartbeat(url), {
    timeout: timeoutMs,
    clientProperties: { connection_name: "tidings-commands" }
  })
  try {
    const channel = await connection.createConfirmChannel()
    const live = new Live(connection, channel)
    let lastError = ""
    connection.on("error", (error: Error) => {
      lastError = errorText(error)
    })
    channel.on("error", (error: Error) => {
      lastError = errorText(error)
    })
    const closed = (what: string) => (error?: Error) => {
      const why = lastError || (error ? errorText(error) : "")
      live.fail(why === "" ? `${what} closed` : `${what} closed: ${why}`)
      void connection.close().catch(() => undefined)
    }
    connection.once("close", closed("the connection to the broker"))
    channel.once("close", closed("the channel to the broker"))
    channel.on("return", (message: Message) => {
      const id = message.properties.messageId
      const fields = message.fields as { replyCode?: number; replyText?: string }
      if (typeof id === "string") live.returned.set(id, `${fields.replyCode} ${fields.replyText}`)
    })
    await channel.consume(
      "amq.rabbitmq.reply-to",
      (message) => {
        const id = message?.properties.correlationId
        if (message === null || typeof id !== "string") return
        const settle = live.waiting.get(id)
        live.waiting.delete(id)
        settle?.({ ok: true, message })
      },
      { noAck: true }
    )
    return live
  } catch (error) {
    await connection.close().catch(() => undefined)
    throw error
  }
}

export interface AmqpLinksShape {
  /** The open connection to `url`, opening one if there is none (concurrent callers share the attempt). */
  readonly live: (url: string, timeoutMs: number) => Promise<Live>
}

/** The connections AMQP-bound commands publish on, one per URL; provided by `layer`. */
export class AmqpLinks extends Context.Service<AmqpLinks, AmqpLinksShape>()("tidings/bridges/AmqpLinks") {}

/** Opens connections on demand and closes them all with the layer. */
export const layer: Layer.Layer<AmqpLinks> = Layer.effect(
  AmqpLinks,
  Effect.gen(function* () {
    const links = new Map<string, Promise<Live>>()
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        closed = true
        const all = [...links.values()]
        links.clear()
        await Promise.all(
          all.map((attempt) =>
            attempt.then(
              (live) => {
                live.fail("the server is shutting down")
                return live.connection.close().catch(() => undefined)
              },
              () => undefined
            )
          )
        )
      })
    )
    const open = (url: string, timeoutMs: number): Promise<Live> => {
      const attempt = openLive(url, timeoutMs)
      links.set(url, attempt)
      attempt.then(
        (live) => {
          // the layer closed while it was being opened
          if (closed) {
            live.fail("the server is shutting down")
            void live.connection.close().catch(() => undefined)
          }
        },
        () => {
          if (links.get(url) === attempt) links.delete(url)
        }
      )
      return attempt
    }
    const live = (url: string, timeoutMs: number): Promise<Live> => {
      if (closed) return Promise.reject(new Error("the server is shutting down"))
      const current = links.get(url)
      if (current === undefined) return open(url, timeoutMs)
      return current.then((found) => {
        if (found.open) return found
        // lost since: open another (or join the attempt another command started meanwhile)
        if (links.get(url) === current) links.delete(url)
        return live(url, timeoutMs)
      })
    }
    return AmqpLinks.of({ live })
  })
)

// ---- handlers ------------------------------------------------------------------------------------------------------

const placeholder = /\{([^{}]+)\}/g

const fieldAt = (value: unknown, path: string): unknown => {
  let current = value
  for (const key of path.split(".")) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

/**
 * The routing key from its template, or what is wrong: a placeholder the payload does not fill, or a value with a
 * `.` (it would add words to a topic routing key, so that a caller's payload could reach other bindings).
 */
const routingKeyOf = (template: string, payload: unknown): { key: string } | { problem: string } => {
  let problem: string | undefined
  const key = template.replace(placeholder, (_, name: string) => {
    const value = fieldAt(payload, name)
    const text =
      typeof value === "string" ? value : typeof value === "number" && Number.isFinite(value) ? String(value) : ""
    if (text === "") problem ??= `needs {${name}}, which the payload lacks`
    else if (text.includes(".")) problem ??= `does not take {${name}} = ${JSON.stringify(text)}: a value has no "."`
    return text
  })
  if (problem === undefined && Buffer.byteLength(key) > 255) problem = "is longer than 255 bytes once filled"
  return problem === undefined ? { key } : { problem }
}

type Erased = (payload: unknown, context: CommandContext<AnyProtocol>) => Effect.Effect<unknown, unknown, AmqpLinks>

interface Resolved {
  readonly command: string
  readonly exchange: string
  readonly routingKey: string
  readonly mode: AmqpCommandMode
  /** Fire-and-forget: the typed result answered once confirmed. */
  readonly accepted: unknown
}

const binder = (codec: ProtocolCodec, options: AmqpCommandsOptions, binding: Resolved): Erased => {
  const { command, exchange, mode } = binding
  const replyTimeoutMs = options.replyTimeoutMs ?? 10_000
  const brokerTimeoutMs = options.brokerTimeoutMs ?? 5_000
  const retryAfterMs = options.retryAfterMs ?? 1_000
  const where = `${command} → ${safeUrl(options.url)} exchange ${exchange}`

  const unavailable = (why: string) =>
    Effect.logWarning(`amqp command ${where}: ${why}`).pipe(
      // the client's message names the command, never the broker's address
      Effect.andThen(
        Effect.fail(new CommandUnavailable({ message: `command ${command} is unavailable: ${why}`, retryAfterMs }))
      )
    )
  const defect = (why: string) => Effect.die(new AmqpCommandFailed({ command, message: why }))

  /** Publishes and waits for the confirm (and, in reply mode, the answer); never fails, says what happened. */
  const exchangeMessage = (live: Live, routingKey: string, body: Buffer, context: CommandContext<AnyProtocol>) =>
    Effect.callback<Answer | { readonly ok: "confirmed" }>((resume, signal) => {
      const messageId = randomUUID()
      const correlationId = mode === "reply" ? randomUUID() : undefined
      let done = false
      const finish = (answer: Answer | { readonly ok: "confirmed" }) => {
        if (done) return
        done = true
        clearTimeout(timer)
        live.returned.delete(messageId)
        if (correlationId !== undefined) live.waiting.delete(correlationId)
        resume(Effect.succeed(answer))
      }
      let confirmed = false
      const timer = setTimeout(
        () =>
          finish({
            ok: false,
            reason:
              mode === "reply" && confirmed
                ? `no answer within ${replyTimeoutMs} ms`
                : `the broker did not confirm within ${brokerTimeoutMs} ms`
          }),
        mode === "reply" ? replyTimeoutMs : brokerTimeoutMs
      )
      signal.addEventListener("abort", () => finish({ ok: false, reason: "interrupted" }), { once: true })
      if (correlationId !== undefined) live.waiting.set(correlationId, finish)
      const headers: Record<string, unknown> = {
        "x-tidings-protocol": codec.name,
        "x-tidings-version": codec.latest,
        "x-tidings-command": command,
        "x-tidings-session": context.session,
        "x-tidings-connection": context.connection
      }
      if (context.user !== null) headers["x-tidings-user"] = context.user
      try {
        live.channel.publish(
          exchange,
          routingKey,
          body,
          {
            mandatory: true,
            persistent: mode === "fire-and-forget",
            contentType: "application/json",
            messageId,
            type: command,
            appId: "tidings",
            timestamp: Math.floor(Date.now() / 1000),
            headers,
            ...(correlationId === undefined
              ? {}
              : { correlationId, replyTo: "amq.rabbitmq.reply-to", expiration: String(replyTimeoutMs) })
          },
          (error: unknown) => {
            const returned = live.returned.get(messageId)
            if (error) finish({ ok: false, reason: `the broker refused it (${errorText(error)})` })
            else if (returned !== undefined) {
              finish({ ok: false, reason: `no queue takes routing key ${routingKey} (${returned})` })
            } else if (mode === "fire-and-forget") finish({ ok: "confirmed" })
            else confirmed = true
          }
        )
      } catch (error) {
        finish({ ok: false, reason: errorText(error) })
      }
    })

  return (payload, context) =>
    Effect.gen(function* () {
      const encoded = codec.encodeCommand(command, payload, codec.latest)
      if (Result.isFailure(encoded)) return yield* defect(`payload does not encode: ${encoded.failure.message}`)
      const routed = routingKeyOf(binding.routingKey, encoded.success)
      if ("problem" in routed) return yield* defect(`routing key ${binding.routingKey} ${routed.problem}`)
      const links = yield* AmqpLinks
      const live = yield* Effect.tryPromise({
        try: () => links.live(options.url, brokerTimeoutMs),
        catch: (error) => errorText(error)
      }).pipe(Effect.catch((why) => unavailable(`cannot reach the broker (${why})`)))
      if (!live.declared.has(exchange)) {
        yield* Effect.tryPromise({
          try: () => live.channel.assertExchange(exchange, options.exchangeType ?? "topic", { durable: true }),
          catch: (error) => errorText(error)
        }).pipe(Effect.catch((why) => unavailable(`cannot declare exchange ${exchange} (${why})`)))
        live.declared.add(exchange)
      }
      const body = Buffer.from(JSON.stringify(encoded.success))
      const outcome = yield* exchangeMessage(live, routed.key, body, context)
      if (outcome.ok === "confirmed") return binding.accepted
      if (outcome.ok === false) return yield* unavailable(live.open ? outcome.reason : live.reason)
      const answer = WorkerAnswer.decode(codec, command, outcome.message.content.toString("utf8"))
      if (answer.kind === "bad") return yield* defect(answer.reason)
      return answer.kind === "result" ? answer.value : yield* Effect.fail(answer.value)
    })
}

/** Checks a binding and works out what a fire-and-forget command answers; throws when it cannot be used. */
const resolve = (
  codec: ProtocolCodec,
  options: AmqpCommandsOptions,
  command: string,
  binding: AmqpCommandBinding<AnyProtocol, string>
): Resolved => {
  if (!codec.commandNames().includes(command)) {
    throw new Error(`AmqpCommands: ${codec.name} v${codec.latest} has no command "${command}"`)
  }
  if (binding.routingKey === undefined || typeof binding.routingKey !== "string") {
    throw new Error(`AmqpCommands: the binding of ${command} has no routingKey`)
  }
  const mode = binding.mode ?? options.mode ?? "fire-and-forget"
  if (mode !== "fire-and-forget" && mode !== "reply") {
    throw new Error(`AmqpCommands: the mode of ${command} must be fire-and-forget or reply, not ${String(mode)}`)
  }
  let accepted: unknown
  if (mode === "fire-and-forget") {
    if (binding.result !== undefined) {
      const encoded = codec.encodeReply({ name: command, ok: true, result: binding.result }, codec.latest, command)
      if (Result.isFailure(encoded)) {
        throw new Error(
          `AmqpCommands: the result of fire-and-forget ${command} is not a ${command} result: ${encoded.failure.message}`
        )
      }
      accepted = binding.result
    } else {
      const decoded = codec.decodeReply(command, { ok: true, result: {} }, codec.latest)
      if (Result.isFailure(decoded)) {
        throw new Error(
          `AmqpCommands: fire-and-forget ${command} answers {} once the broker has it, which is not a ${command} ` +
            `result (${decoded.failure.message}); give the binding a result, or use mode "reply"`
        )
      }
      accepted = decoded.success.value
    }
  } else if (binding.result !== undefined) {
    throw new Error(`AmqpCommands: ${command} is in reply mode, where the consumer answers; it takes no result`)
  }
  return { command, exchange: binding.exchange ?? options.exchange, routingKey: binding.routingKey, mode, accepted }
}

/** One command's handler that publishes it to the exchange. */
export const to = <P extends AnyProtocol, K extends CommandName<LatestOf<P>>>(
  protocol: P,
  command: K,
  binding: AmqpCommandBinding<P, K>,
  options: AmqpCommandsOptions
): Handler<P, K, AmqpLinks> => {
  const codec = new ProtocolCodec(protocol)
  return binder(
    codec,
    options,
    resolve(codec, options, command, binding as AmqpCommandBinding<AnyProtocol, string>)
  ) as unknown as Handler<P, K, AmqpLinks>
}

/**
 * Handlers for several commands (`commands: { cancel: { routingKey: "cancel.{runId}" } }`); spread the result
 * into the server's `handlers` and provide `layer`.
 */
export const handlers = <P extends AnyProtocol, const C extends AmqpCommandBindings<P>>(
  protocol: P,
  options: AmqpCommandsOptions & {
    readonly commands: C & Record<Exclude<keyof C, CommandName<LatestOf<P>>>, never>
  }
): AmqpHandlers<P, keyof C & CommandName<LatestOf<P>>> => {
  const codec = new ProtocolCodec(protocol)
  const bindings = Object.entries(options.commands as Record<string, AmqpCommandBinding<AnyProtocol, string>>)
  return Object.fromEntries(
    bindings.map(([command, binding]) => [command, binder(codec, options, resolve(codec, options, command, binding))])
  ) as unknown as AmqpHandlers<P, keyof C & CommandName<LatestOf<P>>>
}
