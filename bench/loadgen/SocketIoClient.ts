/**
 * A client of the Socket.IO baseline that speaks Engine.IO v4 / Socket.IO v5 directly over raw `ws` (the same
 * socket library and scanner as the other clients, so the load generator costs the same per delivery): open
 * packet `0{…}` → connect to the main namespace `40` → `40{sid}` → events `42["tick",{…}]`; answers the
 * server's ping `2` with pong `3`.
 */
import WebSocket from "ws"
import { nowMs } from "../protocol.ts"
import type { BenchClient, ClientEnv } from "./BenchClient.ts"
import { newStream } from "./Recorder.ts"
import { fromParsed, scanTick } from "./scan.ts"

export class SocketIoClient implements BenchClient {
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
      const ws = new WebSocket(`${this.url}/socket.io/?EIO=4&transport=websocket`, {
        perMessageDeflate: false,
        skipUTF8Validation: true
      })
      this.ws = ws
      ws.once("error", reject)
      ws.on("close", (code) => {
        if (!this.expectingClose) this.env.unexpectedClose(code)
      })
      ws.on("message", (data: Buffer) => {
        const now = nowMs()
        const text = data.toString("latin1")
        const kind = text.charCodeAt(0)
        if (kind === 52 /* 4: message */) {
          const packet = text.charCodeAt(1)
          if (packet === 50 /* 2: event */) {
            const at = text.indexOf("{")
            if (at > 0 && (scanTick(text, at) || fromParsed((JSON.parse(text.slice(1)) as [string, object])[1]))) {
              this.env.recorder.tick(this.stream, now)
            } else this.env.problem("unexpected Socket.IO event")
          } else if (packet === 48 /* 0: connect */) resolve()
          else if (packet === 52 /* 4: connect_error */) reject(new Error(`Socket.IO connect error: ${text}`))
        } else if (kind === 50 /* 2: ping */) ws.send("3")
        else if (kind === 48 /* 0: open */) ws.send("40")
      })
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
