/**
 * A tidings client for the load generator, on the load generator's WireSocket: authenticates at the upgrade
 * (`Authorization: Bearer`) and waits for `welcome`, subscribes, reads newline-batched messages (a scan for event
 * frames, JSON.parse for the rest), answers pings, acks cumulatively like the real client (after 1,000 events or
 * about a second, spread ±20% per client), tracks its channel position (offset gaps and repeats are counted, not
 * hidden), resumes with `since` after a drop (asking again after an `unavailable` answer, as the real client
 * does), and sends `echo` commands.
 */
import { benchSubprotocol, nowMs } from "../protocol.ts"
import type { BenchClient, ClientEnv } from "./BenchClient.ts"
import { newStream } from "./Recorder.ts"
import { isEventFrame, scanEventFrame, scanned, scanTick } from "./scan.ts"
import { WireSocket } from "./WireSocket.ts"

interface Frame {
  readonly type: string
  readonly [key: string]: unknown
}

export interface Recovery {
  /** Resume started (reconnect) → `subscribed` received, ms. */
  readonly totalMs: number
  /** `subscribe` sent → `subscribed` received, ms. */
  readonly subscribeMs: number
  readonly replayed: number
  readonly recovered: boolean
}

export class TidingsClient implements BenchClient {
  readonly stream = newStream()
  private socket: WireSocket | undefined
  private expectingClose = false
  epoch = ""
  /** Offset of the last event received (-1 until the first position is known). */
  offset = -1
  /** Offset before the first event this client received, for the continuity check. */
  baseOffset = -1
  /** Events received, all steps (for the continuity check). */
  events = 0
  offsetGaps = 0
  offsetRepeats = 0
  resets = 0
  private unacked = 0
  private firstUnackedAt = 0
  private subscribed: ((frame: Frame) => void) | undefined
  private welcomed: ((frame: Frame) => void) | undefined
  private resumeStartedAt = 0
  private subscribeSentAt = 0
  /** The last subscribe frame sent, to send again after an `unavailable` answer. */
  private lastSubscribe: string | undefined
  private readonly pendingCommands = new Map<string, number>()

  constructor(
    readonly index: number,
    private readonly url: string,
    private readonly token: string,
    readonly channel: string | undefined,
    private readonly env: ClientEnv,
    /** Ack after this many events (0: only the worker's timer acks, or nothing when it is off). */
    private readonly ackEvery = 100
  ) {}

  get isOpen(): boolean {
    return this.socket?.isOpen === true
  }

  /** Whether an ack is due: events are unacked and the first of them arrived at least `delayMs` ago. */
  ackDue(now: number, delayMs: number): boolean {
    return this.unacked > 0 && now - this.firstUnackedAt >= delayMs
  }

  /** Connects and authenticates (resolves at `welcome`). */
  connect(): Promise<void> {
    return this.open(undefined, false).then(() => undefined)
  }

  /** Subscribes to the client's channel from its current top (resolves at `subscribed`). */
  subscribe(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.channel || !this.isOpen) return reject(new Error("not connected or no channel"))
      this.subscribed = () => resolve()
      this.subscribeSentAt = nowMs()
      this.sendSubscribe(`{"type":"subscribe","channel":${JSON.stringify(this.channel)}}`)
    })
  }

  /** Reconnects and subscribes from the last received position; resolves when replay is complete. */
  resume(): Promise<Recovery> {
    this.resumeStartedAt = nowMs()
    return this.open(this.offset >= 0 ? { epoch: this.epoch, offset: this.offset } : undefined, true).then((frame) => {
      const now = nowMs()
      return {
        totalMs: now - this.resumeStartedAt,
        subscribeMs: now - this.subscribeSentAt,
        replayed: typeof frame.replayed === "number" ? frame.replayed : 0,
        recovered: frame.recovered === true
      }
    })
  }

  /** Opens the socket; with `subscribeNow`, subscribes at once (from `since`) and resolves at `subscribed`. */
  private open(since: { epoch: string; offset: number } | undefined, subscribeNow: boolean): Promise<Frame> {
    return new Promise((resolve, reject) => {
      this.expectingClose = false
      let settled = false
      const fail = (error: Error) => {
        if (settled) return
        settled = true
        reject(error)
      }
      const socket: WireSocket = new WireSocket(
        this.url,
        {
          protocol: benchSubprotocol,
          headers: { authorization: `Bearer ${this.token}` },
          localAddress: this.env.sourceAddress?.(this.index, new URL(this.url).hostname)
        },
        {
          onError: fail,
          onClose: (code) => {
            if (!settled) fail(new Error(`closed ${code} before ready`))
            if (!this.expectingClose && socket === this.socket) this.env.unexpectedClose(code)
          },
          onMessage: (text) => this.onMessage(text),
          onOpen: () => {
            if (!this.channel || !subscribeNow) {
              this.welcomed = (frame) => {
                settled = true
                resolve(frame)
              }
              return
            }
            this.subscribed = (frame) => {
              settled = true
              resolve(frame)
            }
            this.subscribeSentAt = nowMs()
            this.sendSubscribe(
              since
                ? `{"type":"subscribe","channel":${JSON.stringify(this.channel)},"since":{"epoch":${JSON.stringify(since.epoch)},"offset":${since.offset}}}`
                : `{"type":"subscribe","channel":${JSON.stringify(this.channel)}}`
            )
          }
        }
      )
      this.socket = socket
    })
  }

  private sendSubscribe(frame: string): void {
    this.lastSubscribe = frame
    this.socket!.send(frame)
  }

  private onMessage(text: string): void {
    const now = nowMs()
    let start = 0
    let events = 0
    for (;;) {
      const end = text.indexOf("\n", start)
      const frame = end < 0 ? (start === 0 ? text : text.slice(start)) : text.slice(start, end)
      if (isEventFrame(frame)) {
        if (scanEventFrame(frame)) this.onEvent(now)
        else this.onParsed(JSON.parse(frame) as Frame, now)
        events++
      } else this.onParsed(JSON.parse(frame) as Frame, now)
      if (end < 0) break
      start = end + 1
    }
    if (events > 0) {
      if (this.unacked === 0) this.firstUnackedAt = now
      this.unacked += events
      if (this.ackEvery > 0 && this.unacked >= this.ackEvery) this.ack()
    }
  }

  private onEvent(now: number): void {
    const offset = scanned.offset
    if (this.offset >= 0) {
      if (offset <= this.offset) {
        this.offsetRepeats++
        return
      }
      if (offset > this.offset + 1) this.offsetGaps += offset - this.offset - 1
    } else this.baseOffset = offset - 1
    this.offset = offset
    this.events++
    this.env.recorder.tick(this.stream, now)
  }

  private onParsed(frame: Frame, now: number): void {
    switch (frame.type) {
      case "event": {
        // not the expected layout: read it the slow way
        const data = frame.data as { s: number; i: number; t: number; m: number }
        scanned.offset = frame.offset as number
        scanned.s = data.s
        scanned.i = data.i
        scanned.t = data.t
        scanned.m = data.m
        this.env.problem("event frame not in the expected layout")
        this.onEvent(now)
        return
      }
      case "welcome": {
        const done = this.welcomed
        this.welcomed = undefined
        done?.(frame)
        return
      }
      case "subscribed": {
        const position = frame.position as { epoch: string; offset: number }
        this.epoch = position.epoch
        if (this.offset < 0) {
          this.offset = position.offset
          this.baseOffset = position.offset
        }
        const done = this.subscribed
        this.subscribed = undefined
        done?.(frame)
        return
      }
      case "reply": {
        const id = frame.id as string
        const scheduled = this.pendingCommands.get(id)
        this.pendingCommands.delete(id)
        if (frame.ok === true && scheduled !== undefined) this.env.recorder.reply(scheduled, now)
        else this.env.recorder.commandError(frame.ok === true ? "unknown_reply" : "command_failed")
        return
      }
      case "error": {
        const code = String(frame.code)
        if (code === "unavailable" && frame.channel === this.channel && this.subscribed && this.lastSubscribe) {
          // like the real client: the server could not subscribe now (its broker is busy or away); ask again
          this.env.problem("subscribe retried after unavailable")
          const frameText = this.lastSubscribe
          setTimeout(() => {
            if (this.subscribed && this.isOpen) this.socket!.send(frameText)
          }, 100)
          return
        }
        if (typeof frame.id === "string" && this.pendingCommands.delete(frame.id)) this.env.recorder.commandError(code)
        else this.env.problem(`error frame ${code}: ${String(frame.message).slice(0, 120)}`)
        return
      }
      case "reset": {
        this.resets++
        const position = frame.position as { epoch: string; offset: number }
        this.epoch = position.epoch
        this.offset = position.offset
        this.env.problem(`reset ${String(frame.reason)}`)
        return
      }
      case "ping":
        this.socket?.send('{"type":"pong"}')
        return
      default:
        return
    }
  }

  /** Sends a cumulative ack for what was received. */
  ack(): void {
    this.unacked = 0
    if (!this.channel || this.offset < 0 || !this.isOpen) return
    this.socket!.send(
      `{"type":"ack","channel":${JSON.stringify(this.channel)},"epoch":${JSON.stringify(this.epoch)},"offset":${this.offset}}`
    )
  }

  /** Sends an echo command stamped with its scheduled time. */
  command(id: string, scheduled: number, pad: string): boolean {
    if (!this.isOpen) return false
    this.pendingCommands.set(id, scheduled)
    this.socket!.send(`{"type":"command","id":"${id}","name":"echo","payload":{"t":${scheduled},"p":"${pad}"}}`)
    return true
  }

  get commandsInFlight(): number {
    return this.pendingCommands.size
  }

  terminate(): void {
    this.expectingClose = true
    this.unacked = 0
    this.socket?.terminate()
  }

  close(): void {
    this.expectingClose = true
    this.socket?.close()
  }
}

/** Exported for the smoke test: the scanner must agree with JSON.parse on a real frame. */
export const scanAgrees = (frame: string): boolean => {
  const parsed = JSON.parse(frame) as { offset: number; data: { s: number; i: number; t: number; m: number } }
  return (
    scanEventFrame(frame) &&
    scanned.offset === parsed.offset &&
    scanned.s === parsed.data.s &&
    scanned.i === parsed.data.i &&
    Math.abs(scanned.t - parsed.data.t) < 1e-3 &&
    scanned.m === parsed.data.m &&
    scanTick(JSON.stringify(parsed.data), 0)
  )
}
