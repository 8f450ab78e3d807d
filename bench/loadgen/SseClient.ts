/**
 * A Server-Sent Events reader of a tidings channel for the load generator, on plain `node:http` (no EventSource
 * library): `GET /v1/channels/<channel>/events` with `Accept: text/event-stream` and the bench token as
 * `Authorization: Bearer`, ready once the server answers 200 (SSE has no `subscribed`: the server registers the
 * stream's live listener right after it writes the head, src/server/http/Sse.ts, and the bench publishes nothing
 * until every reader is open). The body (Node's parser undoes the chunked encoding) is read
 * as latin1 text like the WebSocket clients' messages and cut into messages at the blank line; each message's
 * `id:`, `event:` and `data:` lines are read in place (scanSseMessage), a `tick`'s data with the same Tick
 * scanner as the other clients (latency = receipt − the scheduled time in the data). Its id's offset is checked
 * for gaps and repeats beside the Recorder's per-step check. Comments (`: ping`) and `retry:` are skipped;
 * `reset`, `error` and unknown events are counted as problems. A stream the server ends is an unexpected close
 * (code 0: SSE has no close codes).
 */
import { type ClientRequest, request } from "node:http"
import { nowMs } from "../protocol.ts"
import type { BenchClient, ClientEnv } from "./BenchClient.ts"
import { newStream } from "./Recorder.ts"
import { fromParsed, scanTick } from "./scan.ts"

/** What scanSseMessage read from the last message (no allocation per message but the event name). */
export const sseMessage = {
  /** The `event:` field ("message" when there is none). */
  event: "message",
  /** The number after the last ":" of the `id:` field; -1 without an id. */
  offset: -1,
  /** Where the value of the first `data:` line starts and ends in the text; -1 without data. */
  dataAt: -1,
  dataEnd: -1,
  /** `data:` lines: more than one is joined with "\n" (the SSE rule) by dataOf. */
  dataLines: 0,
  /** All data lines' values when there is more than one. */
  joined: ""
}

const COLON = 58
const SPACE = 32

/** The start of a field's value: after the colon and one optional space (the SSE rule). */
const valueAt = (text: string, colon: number, lineEnd: number): number =>
  colon + 1 < lineEnd && text.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1

/**
 * Reads one SSE message, text[start, end) without its terminating blank line, into `sseMessage`. Lines are
 * separated by "\n" (what tidings writes); a line starting with ":" is a comment; unknown fields are ignored.
 */
export const scanSseMessage = (text: string, start: number, end: number): void => {
  sseMessage.event = "message"
  sseMessage.offset = -1
  sseMessage.dataAt = -1
  sseMessage.dataEnd = -1
  sseMessage.dataLines = 0
  sseMessage.joined = ""
  let pos = start
  while (pos < end) {
    let lineEnd = text.indexOf("\n", pos)
    if (lineEnd < 0 || lineEnd > end) lineEnd = end
    if (lineEnd > pos && text.charCodeAt(pos) !== COLON) {
      let colon = text.indexOf(":", pos)
      if (colon < 0 || colon > lineEnd) colon = lineEnd
      const name = colon - pos
      const at = valueAt(text, colon, lineEnd)
      if (name === 4 && text.startsWith("data", pos)) {
        if (sseMessage.dataLines === 0) {
          sseMessage.dataAt = at
          sseMessage.dataEnd = lineEnd
        } else {
          if (sseMessage.dataLines === 1) sseMessage.joined = text.slice(sseMessage.dataAt, sseMessage.dataEnd)
          sseMessage.joined += `\n${text.slice(at, lineEnd)}`
        }
        sseMessage.dataLines++
      } else if (name === 5 && text.startsWith("event", pos)) {
        sseMessage.event = text.slice(at, lineEnd)
      } else if (name === 2 && text.startsWith("id", pos)) {
        const last = text.lastIndexOf(":", lineEnd - 1)
        let n = 0
        let digits = 0
        for (let i = Math.max(last + 1, at); i < lineEnd; i++) {
          const c = text.charCodeAt(i)
          if (c < 48 || c > 57) {
            digits = 0
            break
          }
          n = n * 10 + (c - 48)
          digits++
        }
        sseMessage.offset = digits > 0 ? n : -1
      }
    }
    pos = lineEnd + 1
  }
}

/** The last scanned message's data as one string (for JSON.parse on the slow path). */
export const dataOf = (text: string): string =>
  sseMessage.dataLines > 1 ? sseMessage.joined : text.slice(sseMessage.dataAt, sseMessage.dataEnd)

export class SseClient implements BenchClient {
  readonly stream = newStream()
  private request: ClientRequest | undefined
  private open = false
  private expectingClose = false
  /** The tail of the body that does not end a message yet. */
  private pending = ""
  /** Offset of the last event received (from its id); -1 until the first. */
  offset = -1
  events = 0
  offsetGaps = 0
  offsetRepeats = 0

  constructor(
    readonly index: number,
    /** The server's base URL, `http://127.0.0.1:<port>`. */
    private readonly url: string,
    private readonly token: string,
    readonly channel: string,
    private readonly env: ClientEnv
  ) {}

  get isOpen(): boolean {
    return this.open
  }

  /** Opens the stream; resolves when the server answered 200, rejects with `HTTP <status>` otherwise. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const base = new URL(this.url)
      let settled = false
      const req = request({
        host: base.hostname,
        port: base.port,
        ...(this.env.sourceAddress ? { localAddress: this.env.sourceAddress(this.index, base.hostname) } : {}),
        path: `/v1/channels/${encodeURIComponent(this.channel)}/events`,
        // one connection per reader, as browsers' EventSources have (no pooling agent in between)
        agent: false,
        headers: { accept: "text/event-stream", authorization: `Bearer ${this.token}` }
      })
      this.request = req
      req.on("error", (error) => {
        if (!settled) {
          settled = true
          reject(error)
        }
        this.gone()
      })
      req.on("response", (res) => {
        if (res.statusCode !== 200) {
          settled = true
          res.resume()
          req.destroy()
          reject(new Error(`HTTP ${res.statusCode}`))
          return
        }
        this.open = true
        res.setEncoding("latin1")
        res.on("data", (chunk: string) => this.onData(chunk))
        res.on("close", () => this.gone())
        settled = true
        resolve()
      })
      req.end()
    })
  }

  private gone(): void {
    if (!this.open) return
    this.open = false
    if (!this.expectingClose) this.env.unexpectedClose(0)
  }

  /** A piece of the response body (public for the smoke test, which feeds it cut anywhere). */
  onData(chunk: string): void {
    const now = nowMs()
    const text = this.pending.length > 0 ? this.pending + chunk : chunk
    let start = 0
    for (;;) {
      const end = text.indexOf("\n\n", start)
      if (end < 0) break
      if (end > start) this.onMessage(text, start, end, now)
      start = end + 2
    }
    this.pending = start >= text.length ? "" : start === 0 ? text : text.slice(start)
  }

  private onMessage(text: string, start: number, end: number, now: number): void {
    // comments (the heartbeat) and `retry:` alone carry no data
    if (text.charCodeAt(start) === COLON) return
    scanSseMessage(text, start, end)
    if (sseMessage.dataLines === 0) return
    if (sseMessage.event !== "tick") {
      this.env.problem(`sse event ${sseMessage.event.slice(0, 40)}: ${dataOf(text).slice(0, 100)}`)
      return
    }
    const offset = sseMessage.offset
    if (offset < 0) this.env.problem("sse tick without an <epoch>:<offset> id")
    else if (this.offset >= 0 && offset <= this.offset) {
      this.offsetRepeats++
      return
    } else {
      if (this.offset >= 0 && offset > this.offset + 1) this.offsetGaps += offset - this.offset - 1
      this.offset = offset
    }
    this.events++
    const fast = sseMessage.dataLines === 1 && scanTick(text, sseMessage.dataAt)
    if (fast || fromParsed(JSON.parse(dataOf(text)) as object)) this.env.recorder.tick(this.stream, now)
    else this.env.problem("unexpected sse tick data")
  }

  terminate(): void {
    this.expectingClose = true
    this.request?.destroy()
  }

  close(): void {
    this.expectingClose = true
    this.request?.destroy()
  }
}
