/**
 * The load generator's WebSocket client: RFC 6455 over a plain `net.Socket`, with only what a load generator
 * needs — the upgrade (optional subprotocol and headers; the server's accept key is checked), unmasked server
 * frames read straight off the socket's chunks (text, binary, continuation, ping → pong, close), masked client
 * text frames, a close handshake and an abrupt drop. Messages are handed over as latin1 text (no UTF-8 decoding
 * or validation: the load generator reads ASCII numbers).
 *
 * Why not `ws`: a load generator must cost as little per message as it can, or it — not the server — sets the
 * ceiling. On this machine (2 cores, 1,000 sockets, one 150-byte message each at 50 or 100/s;
 * `node --import tsx bench/micro/loadgen-client.ts`) `ws`'s client took 4.2 to 4.9 µs of user CPU per message and
 * this one 2.7 to 3.6 µs, the kernel 4.3 to 5.8 µs either way; `ws`'s client upgrade also goes through
 * `http.request`. Every server under test is read through this same client.
 */
import { createHash } from "node:crypto"
import { connect, type Socket } from "node:net"
import { pooledRandom } from "../../src/server/RandomPool.ts"

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
const HEADER_END = Buffer.from("\r\n\r\n")

export interface WireHandlers {
  /** The server accepted the upgrade. */
  readonly onOpen: () => void
  /** A complete text or binary message, as latin1 text. */
  readonly onMessage: (text: string) => void
  /** The connection is gone: the server's close code, or 1006 when none was received. Called once. */
  readonly onClose: (code: number) => void
  /** The upgrade failed (`HTTP <status>` for a refused upgrade) or the socket failed before it completed. */
  readonly onError: (error: Error) => void
}

export interface WireOptions {
  readonly protocol?: string
  readonly headers?: Readonly<Record<string, string>>
  /** Connect from this local address (sourceAddress.ts), or let the kernel pick. */
  readonly localAddress?: string | undefined
}

/** A masked client frame (FIN set) with `opcode` and `payload`. */
const clientFrame = (opcode: number, payload: Buffer): Buffer => {
  const length = payload.length
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(head + 4 + length)
  frame[0] = 0x80 | opcode
  if (head === 2) frame[1] = 0x80 | length
  else if (head === 4) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  const mask = pooledRandom(4)
  mask.copy(frame, head)
  const at = head + 4
  for (let i = 0; i < length; i++) frame[at + i] = payload[i]! ^ mask[i & 3]!
  return frame
}

export class WireSocket {
  private readonly socket: Socket
  private readonly key = pooledRandom(16).toString("base64")
  private open = false
  private closed = false
  private closeCode = 1006
  /** Bytes received and not yet consumed (a partial header or frame). */
  private pending: Buffer | undefined
  /** Fragments of a message still being received. */
  private fragments: Array<Buffer> | undefined

  constructor(
    url: string,
    options: WireOptions,
    private readonly handlers: WireHandlers
  ) {
    const target = new URL(url)
    const port = Number(target.port || 80)
    this.socket = connect({
      host: target.hostname,
      port,
      noDelay: true,
      ...(options.localAddress ? { localAddress: options.localAddress } : {})
    })
    let request = `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n`
    if (options.protocol) request += `Sec-WebSocket-Protocol: ${options.protocol}\r\n`
    for (const [name, value] of Object.entries(options.headers ?? {})) request += `${name}: ${value}\r\n`
    this.socket.write(`${request}\r\n`)
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk))
    this.socket.on("error", (error) => {
      if (!this.open) this.fail(error)
    })
    this.socket.on("close", () => this.finish())
  }

  get isOpen(): boolean {
    return this.open && !this.closed
  }

  send(text: string): void {
    if (this.isOpen) this.socket.write(clientFrame(0x1, Buffer.from(text)))
  }

  /** Sends a close frame (1000) and ends the socket once the server answers or closes. */
  close(): void {
    if (!this.isOpen) return this.terminate()
    const payload = Buffer.allocUnsafe(2)
    payload.writeUInt16BE(1000, 0)
    this.socket.write(clientFrame(0x8, payload))
    this.socket.end()
  }

  /** Drops the connection at once (no close handshake): what a network failure looks like to the server. */
  terminate(): void {
    this.socket.destroy()
  }

  private fail(error: Error): void {
    if (this.closed) return
    this.closed = true
    this.handlers.onError(error)
    this.socket.destroy()
  }

  private finish(): void {
    if (this.closed) return
    this.closed = true
    if (this.open) this.handlers.onClose(this.closeCode)
    else this.handlers.onError(new Error(`closed before the upgrade completed`))
  }

  private onData(chunk: Buffer): void {
    let data = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = undefined
    if (!this.open) {
      const end = data.indexOf(HEADER_END)
      if (end < 0) {
        this.pending = data
        return
      }
      if (!this.upgraded(data.toString("latin1", 0, end))) return
      this.open = true
      this.handlers.onOpen()
      data = data.subarray(end + 4)
    }
    const consumed = this.frames(data)
    if (consumed < data.length) this.pending = data.subarray(consumed)
  }

  /** Checks the upgrade response; on failure reports it and drops the socket. */
  private upgraded(head: string): boolean {
    const status = head.slice(9, 12)
    if (!head.startsWith("HTTP/1.1 ") || status !== "101") {
      this.fail(new Error(`HTTP ${status}`))
      return false
    }
    const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1]
    const expected = createHash("sha1")
      .update(this.key + GUID)
      .digest("base64")
    if (accept !== expected) {
      this.fail(new Error("bad Sec-WebSocket-Accept"))
      return false
    }
    return true
  }

  /** Reads every complete frame in `data`; returns how many bytes were consumed. */
  private frames(data: Buffer): number {
    let at = 0
    while (at + 2 <= data.length && !this.closed) {
      const first = data[at]!
      const second = data[at + 1]!
      let length = second & 0x7f
      let head = 2
      if (length === 126) {
        if (at + 4 > data.length) break
        length = data.readUInt16BE(at + 2)
        head = 4
      } else if (length === 127) {
        if (at + 10 > data.length) break
        length = Number(data.readBigUInt64BE(at + 2))
        head = 10
      }
      if (second & 0x80) {
        this.fail(new Error("masked frame from the server"))
        return data.length
      }
      const start = at + head
      const end = start + length
      if (end > data.length) break
      this.frame(first & 0x80, first & 0x0f, data, start, end)
      at = end
    }
    return at
  }

  private frame(fin: number, opcode: number, data: Buffer, start: number, end: number): void {
    switch (opcode) {
      case 0x0: // continuation
      case 0x1: // text
      case 0x2: {
        // binary
        if (!fin) {
          this.fragments ??= []
          this.fragments.push(Buffer.from(data.subarray(start, end)))
          return
        }
        if (this.fragments !== undefined) {
          this.fragments.push(data.subarray(start, end))
          const whole = Buffer.concat(this.fragments)
          this.fragments = undefined
          this.handlers.onMessage(whole.toString("latin1"))
        } else this.handlers.onMessage(data.toString("latin1", start, end))
        return
      }
      case 0x8: // close
        this.closeCode = end - start >= 2 ? data.readUInt16BE(start) : 1005
        this.socket.end()
        return
      case 0x9: // ping
        this.socket.write(clientFrame(0xa, Buffer.from(data.subarray(start, end))))
        return
      default: // pong, or a reserved opcode: nothing to do
        return
    }
  }
}
