/**
 * A client of the bare-ws baseline: every message is one event's data (a Tick), read with the same scanner as
 * the tidings client. Nothing to authenticate, subscribe or ack.
 */
import WebSocket from "ws"
import { nowMs } from "../protocol.ts"
import type { BenchClient, ClientEnv } from "./BenchClient.ts"
import { newStream } from "./Recorder.ts"
import { fromParsed, scanTick } from "./scan.ts"

export class WsClient implements BenchClient {
  readonly stream = newStream()
  private ws: WebSocket | undefined
  private expectingClose = false

  constructor(
    readonly index: number,
    private readonly url: string,
    private readonly env: ClientEnv
  ) {}

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false, skipUTF8Validation: true })
      this.ws = ws
      ws.once("error", reject)
      ws.on("close", (code) => {
        if (!this.expectingClose) this.env.unexpectedClose(code)
      })
      ws.on("message", (data: Buffer) => {
        const now = nowMs()
        const text = data.toString("latin1")
        if (scanTick(text, 0) || fromParsed(JSON.parse(text) as object)) this.env.recorder.tick(this.stream, now)
        else this.env.problem("unexpected message")
      })
      ws.once("open", () => resolve())
    })
  }

  terminate(): void {
    this.expectingClose = true
    this.ws?.terminate()
  }

  close(): void {
    this.expectingClose = true
    this.ws?.close()
  }
}
