/**
 * A small scripted tidings server for client tests, on a real socket (127.0.0.1, port 0). It speaks the wire
 * protocol honestly — subprotocol negotiation with HTTP 400, authenticate → welcome, subscribe with replay or
 * reset, events with contiguous offsets per channel and epoch, acks, command replies, pings, goaway, session
 * updates, close codes — and lets a test script faults: drop an event for one connection, resend a frame,
 * change an epoch, trim history, go silent, kill a socket.
 *
 * It is not the real server (src/server); integration tests against that one come separately. Event data is
 * sent as given: tests publish it in the wire form of the version the client speaks. It selects the first
 * subprotocol offered and speaks its codec: JSON text, or MessagePack binary messages for `.msgpack`.
 */
import { createServer, type IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { type RawData, WebSocket, WebSocketServer } from "ws"
import * as MessagePack from "../../../src/protocol/MessagePack.ts"
import { choose, parseHeader } from "../../../src/protocol/Negotiation.ts"
import type { Position } from "../../../src/protocol/Position.ts"

export type Frame = { readonly type: string } & Record<string, unknown>

export type CommandOutcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: unknown }
  | {
      readonly reject: {
        readonly code: string
        readonly message: string
        readonly path?: ReadonlyArray<string | number>
        readonly retryAfterMs?: number
      }
    }
  /** Never answer. */
  | "silence"

export interface FakeServerOptions {
  readonly protocol: string
  readonly versions: ReadonlyArray<number>
  /** Interval of server pings; 0 sends none. Default 0. */
  readonly heartbeatMs?: number
  /** Returns the user for a token, or undefined to refuse it (error auth_failed, close 4401). Default: anyone. */
  readonly authenticate?: (token: string | undefined) => string | undefined
  /**
   * Runs before a subscribe is answered (it may wait, or send frames of its own); returning a frame answers the
   * subscribe with it instead (an `error` refusing it, say).
   */
  readonly beforeSubscribe?: (conn: FakeConnection, channel: string) => Frame | undefined | Promise<Frame | undefined>
  readonly onCommand?: (
    name: string,
    payload: unknown,
    conn: FakeConnection
  ) => CommandOutcome | Promise<CommandOutcome>
}

interface Entry {
  readonly offset: number
  readonly event: string
  readonly data: unknown
  readonly time: number
}

interface Log {
  epoch: string
  /** Offset of the last entry ever appended in this epoch. */
  top: number
  entries: Array<Entry>
}

export class FakeConnection {
  readonly received: Array<Frame> = []
  readonly subscriptions = new Set<string>()
  session: string | undefined
  user: string | undefined
  welcomed = false
  muted = false
  closeCode: number | undefined

  constructor(
    readonly id: number,
    readonly version: number,
    readonly socket: WebSocket
  ) {}

  /** Whether the connection negotiated MessagePack. */
  get msgpack(): boolean {
    return this.socket.protocol.endsWith(".msgpack")
  }

  /** Sends frames in one WebSocket message (newline-separated JSON, or MessagePack values back to back). */
  send(...frames: ReadonlyArray<Frame>): void {
    if (this.muted || this.socket.readyState !== WebSocket.OPEN) return
    if (this.msgpack) this.socket.send(Buffer.concat(frames.map((f) => MessagePack.encode(f))))
    else this.socket.send(frames.map((f) => JSON.stringify(f)).join("\n"))
  }

  /** Frames of one type the client sent. */
  sent(type: string): Array<Frame> {
    return this.received.filter((f) => f.type === type)
  }

  /** Destroys the TCP connection without a close frame: the client sees 1006. */
  kill(): void {
    this.socket.terminate()
  }

  close(code: number, reason = ""): void {
    this.socket.close(code, reason)
  }

  /** Stops sending anything, pings included, while keeping the socket open. */
  mute(): void {
    this.muted = true
  }

  goaway(reconnectAfterMs: number): void {
    this.send({ type: "goaway", reason: "restart", reconnectAfterMs })
    this.close(1001, "restart")
  }

  expiringSoon(expiresInMs: number): void {
    this.send({ type: "session_update", status: "expiring_soon", expiresInMs })
  }
}

export interface FakeServer {
  readonly url: string
  readonly connections: ReadonlyArray<FakeConnection>
  /** Upgrades refused with HTTP 400 (no common version). */
  readonly refused: () => number
  /** The last connection that was welcomed. */
  readonly latest: () => FakeConnection | undefined
  /** Acked positions per session and channel, as a real server would store them. */
  readonly acks: Map<string, Map<string, Position>>
  /** Appends to the channel's log and sends to every subscribed connection except `skip`. */
  readonly publish: (channel: string, event: string, data: unknown, options?: { skip?: FakeConnection }) => Position
  readonly entries: (channel: string) => ReadonlyArray<Entry>
  readonly position: (channel: string) => Position
  /** Starts a new epoch: history is lost, offsets restart at 1. */
  readonly newEpoch: (channel: string) => void
  /** Forgets entries at or below `offset`. */
  readonly trim: (channel: string, offset: number) => void
  /** The event frame of an entry, to resend it as a test sees fit. */
  readonly eventFrame: (channel: string, offset: number) => Frame
  /** Resolves with the next connection to be welcomed (after `count` welcomes so far). */
  readonly welcomed: (count: number) => Promise<FakeConnection>
  readonly close: () => Promise<void>
}

let epochs = 0

export const start = async (options: FakeServerOptions): Promise<FakeServer> => {
  const logs = new Map<string, Log>()
  const connections: Array<FakeConnection> = []
  const acks = new Map<string, Map<string, Position>>()
  const welcomeWaiters: Array<{ count: number; resolve: (c: FakeConnection) => void }> = []
  let welcomes = 0
  let sessions = 0
  let refused = 0

  const log = (channel: string): Log => {
    let l = logs.get(channel)
    if (l === undefined) logs.set(channel, (l = { epoch: `e${++epochs}`, top: 0, entries: [] }))
    return l
  }
  const frameOf = (channel: string, epoch: string, e: Entry): Frame => ({
    type: "event",
    channel,
    epoch,
    offset: e.offset,
    event: e.event,
    data: e.data,
    time: e.time
  })

  // it speaks the self-describing envelope only, like a server from before the compact one: it skips those offers
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => [...protocols].find((p) => !p.endsWith(".compact")) ?? false
  })
  const http = createServer((_req, res) => {
    res.statusCode = 404
    res.end()
  })

  http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const offered = parseHeader(req.headers["sec-websocket-protocol"])
    const version = choose(options.protocol, options.versions, offered)
    if (version === undefined) {
      refused++
      const body = JSON.stringify({ error: "no common protocol version", supported: options.versions })
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
      )
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, version))
  })

  const accept = (ws: WebSocket, version: number) => {
    const conn = new FakeConnection(connections.length + 1, version, ws)
    connections.push(conn)
    ws.on("close", (code) => {
      conn.closeCode = code
    })
    ws.on("message", (raw: RawData, isBinary: boolean) => {
      let frame: Frame
      try {
        frame = (isBinary ? MessagePack.decodeAll(raw as Buffer)[0] : JSON.parse(raw.toString())) as Frame
      } catch {
        conn.send({ type: "error", code: "bad_json", message: "not JSON" })
        return
      }
      conn.received.push(frame)
      void onFrame(conn, frame)
    })
  }

  const onFrame = async (conn: FakeConnection, frame: Frame) => {
    if (frame.type === "authenticate") {
      const token = frame.token as string | undefined
      const user = options.authenticate ? options.authenticate(token) : (token ?? null)
      if (user === undefined) {
        conn.send({ type: "error", code: "auth_failed", message: "bad token" })
        conn.close(4401, "auth failed")
        return
      }
      if (conn.welcomed) {
        conn.send({ type: "session_update", status: "refreshed" })
        return
      }
      conn.user = user ?? undefined
      const resumed = typeof frame.session === "string" && acks.has(frame.session)
      conn.session = resumed ? (frame.session as string) : `s${++sessions}`
      if (!acks.has(conn.session)) acks.set(conn.session, new Map())
      conn.welcomed = true
      conn.send({
        type: "welcome",
        session: conn.session,
        protocol: options.protocol,
        version: conn.version,
        user: conn.user ?? null,
        heartbeatMs: options.heartbeatMs ?? 0,
        limits: { maxFrameBytes: 65_536, maxSubscriptions: 100, commandsPerSecond: 50 }
      })
      welcomes++
      for (const w of welcomeWaiters.filter((w) => welcomes > w.count)) {
        welcomeWaiters.splice(welcomeWaiters.indexOf(w), 1)
        w.resolve(conn)
      }
      return
    }
    if (!conn.welcomed) {
      conn.send({ type: "error", code: "not_authenticated", message: "authenticate first" })
      return
    }
    switch (frame.type) {
      case "subscribe": {
        const channel = frame.channel as string
        if (options.beforeSubscribe) {
          const answer = await options.beforeSubscribe(conn, channel)
          if (answer !== undefined) return conn.send(answer)
        }
        return subscribe(conn, channel, frame.since as Position | undefined)
      }
      case "unsubscribe":
        conn.subscriptions.delete(frame.channel as string)
        return conn.send({ type: "unsubscribed", channel: frame.channel as string })
      case "ack":
        acks
          .get(conn.session!)!
          .set(frame.channel as string, { epoch: frame.epoch as string, offset: frame.offset as number })
        return
      case "command": {
        const outcome = options.onCommand
          ? await options.onCommand(frame.name as string, frame.payload, conn)
          : { reject: { code: "unknown_command", message: `unknown command ${String(frame.name)}` } }
        if (outcome === "silence") return
        if ("reject" in outcome) {
          return conn.send({ type: "error", ...outcome.reject, id: frame.id as string })
        }
        return conn.send({ type: "reply", id: frame.id as string, ...outcome })
      }
      case "pong":
        return
    }
  }

  const subscribe = (conn: FakeConnection, channel: string, since: Position | undefined) => {
    conn.subscriptions.add(channel)
    const l = log(channel)
    const top = { epoch: l.epoch, offset: l.top }
    if (since === undefined) {
      return conn.send({ type: "subscribed", channel, position: top, recovered: false, replayed: 0 })
    }
    const oldest = l.entries[0]?.offset ?? l.top + 1
    const reason =
      since.epoch !== l.epoch
        ? "epoch_changed"
        : since.offset > l.top
          ? "unknown_position"
          : since.offset < oldest - 1
            ? "trimmed"
            : undefined
    if (reason !== undefined) {
      return conn.send(
        { type: "reset", channel, reason, position: top },
        { type: "subscribed", channel, position: top, recovered: false, replayed: 0 }
      )
    }
    const missed = l.entries.filter((e) => e.offset > since.offset).map((e) => frameOf(channel, l.epoch, e))
    conn.send(...missed, { type: "subscribed", channel, position: top, recovered: true, replayed: missed.length })
  }

  let pinger: ReturnType<typeof setInterval> | undefined
  if ((options.heartbeatMs ?? 0) > 0) {
    pinger = setInterval(() => {
      for (const c of connections) if (c.welcomed) c.send({ type: "ping" })
    }, options.heartbeatMs)
  }

  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
  const address = http.address()
  const port = typeof address === "object" && address !== null ? address.port : 0

  return {
    url: `ws://127.0.0.1:${port}/ws`,
    connections,
    refused: () => refused,
    latest: () => connections.filter((c) => c.welcomed).at(-1),
    acks,
    publish: (channel, event, data, publishOptions = {}) => {
      const l = log(channel)
      const entry: Entry = { offset: ++l.top, event, data, time: Date.now() }
      l.entries.push(entry)
      const frame = frameOf(channel, l.epoch, entry)
      for (const c of connections) {
        if (c !== publishOptions.skip && c.subscriptions.has(channel) && c.socket.readyState === WebSocket.OPEN) {
          c.send(frame)
        }
      }
      return { epoch: l.epoch, offset: entry.offset }
    },
    entries: (channel) => log(channel).entries,
    position: (channel) => ({ epoch: log(channel).epoch, offset: log(channel).top }),
    newEpoch: (channel) => {
      logs.set(channel, { epoch: `e${++epochs}`, top: 0, entries: [] })
    },
    trim: (channel, offset) => {
      const l = log(channel)
      l.entries = l.entries.filter((e) => e.offset > offset)
    },
    eventFrame: (channel, offset) => {
      const l = log(channel)
      const entry = l.entries.find((e) => e.offset === offset)
      if (entry === undefined) throw new Error(`no entry ${offset} in ${channel}`)
      return frameOf(channel, l.epoch, entry)
    },
    welcomed: (count) =>
      new Promise((resolve) => {
        const done = connections.filter((c) => c.welcomed)
        if (done.length > count) resolve(done[count]!)
        else welcomeWaiters.push({ count, resolve })
      }),
    close: async () => {
      if (pinger !== undefined) clearInterval(pinger)
      for (const c of connections) c.socket.terminate()
      await new Promise<void>((resolve) => wss.close(() => http.close(() => resolve())))
    }
  }
}

/** Polls `check` until it stops throwing (or returns true), then returns its value. */
export const eventually = async <A>(check: () => A, timeoutMs = 5_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const result = check()
      if (result !== false) return result
    } catch (error) {
      if (Date.now() > deadline) throw error
    }
    if (Date.now() > deadline) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 5))
  }
}
