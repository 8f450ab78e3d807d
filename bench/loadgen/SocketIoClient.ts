/**
 * A client of the Socket.IO baseline that speaks Engine.IO v4 / Socket.IO v5 directly over the load generator's
 * WireSocket (the same socket client and scanner as the other clients, so the load generator costs the same per
 * delivery): open packet `0{…}` → connect to the main namespace `40` → `40{sid}` → events `42["tick",{…}]`;
 * answers the server's ping `2` with pong `3`.
 */
import { nowMs } from "../protocol.ts"
import type { BenchClient, ClientEnv } from "./BenchClient.ts"
import { newStream } from "./Recorder.ts"
import { fromParsed, scanTick } from "./scan.ts"
import { WireSocket } from "./WireSocket.ts"

export class SocketIoClient implements BenchClient {
  readonly stream = newStream()
  private socket: WireSocket | undefined
  private expectingClose = false

  constructor(
    readonly index: number,
    private readonly url: string,
    private readonly env: ClientEnv
  ) {}

  get isOpen(): boolean {
    return this.socket?.isOpen === true
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WireSocket(
        `${this.url}/socket.io/?EIO=4&transport=websocket`,
        { localAddress: this.env.sourceAddress?.(this.index, new URL(this.url).hostname) },
        {
          onOpen: () => undefined,
          onError: reject,
          onClose: (code) => {
            if (!this.expectingClose) this.env.unexpectedClose(code)
          },
          onMessage: (text) => {
            const now = nowMs()
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
            } else if (kind === 50 /* 2: ping */) socket.send("3")
            else if (kind === 48 /* 0: open */) socket.send("40")
          }
        }
      )
      this.socket = socket
    })
  }

  terminate(): void {
    this.expectingClose = true
    this.socket?.terminate()
  }

  close(): void {
    this.expectingClose = true
    this.socket?.close()
  }
}
