/**
 * A client of the bare-ws baseline: every message is one event's data (a Tick), read with the same scanner as
 * the tidings client. Nothing to authenticate, subscribe or ack.
 */
import { nowMs } from "../protocol.ts"
import type { BenchClient, ClientEnv } from "./BenchClient.ts"
import { newStream } from "./Recorder.ts"
import { fromParsed, scanTick } from "./scan.ts"
import { WireSocket } from "./WireSocket.ts"

export class WsClient implements BenchClient {
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
      this.socket = new WireSocket(
        this.url,
        { localAddress: this.env.sourceAddress?.(this.index, new URL(this.url).hostname) },
        {
          onOpen: () => resolve(),
          onError: reject,
          onClose: (code) => {
            if (!this.expectingClose) this.env.unexpectedClose(code)
          },
          onMessage: (text) => {
            const now = nowMs()
            if (scanTick(text, 0) || fromParsed(JSON.parse(text) as object)) this.env.recorder.tick(this.stream, now)
            else this.env.problem("unexpected message")
          }
        }
      )
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
