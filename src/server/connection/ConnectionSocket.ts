/**
 * The ws WebSocket class the server makes its sockets with (ws's `WebSocket` option): ws's events go straight to
 * the socket's owner, the Connection, instead of through listeners, and pings are answered by the owner (the
 * server turns ws's automatic pong off). Per socket this saves the listener entries, and the closure plus context
 * that ws's automatic pong keeps (about 100 bytes, against the 2.7 KiB bare ws keeps per connection; see
 * docs/performance.md, memory). After each message, ws's emptied read queue is swapped for a fresh array (see
 * releaseReadQueue).
 */
import { WebSocket } from "ws"

/** What a socket reports to the connection that owns it. */
export interface SocketOwner {
  onMessage(data: WebSocket.RawData, isBinary: boolean): void
  /** A ping frame from the peer: the owner answers it (RFC 6455 5.5.2). */
  onPing(data: Buffer): void
  /** A pong frame from the peer (an answer to a WebSocket-level ping, or unsolicited): the peer is alive. */
  onPong(): void
  /** The socket failed or closed (both may come, and in either order; the owner cleans up once). */
  onSocketGone(): void
}

export class ConnectionSocket extends WebSocket {
  owner: SocketOwner | undefined = undefined

  override emit(event: string | symbol, ...args: Array<unknown>): boolean {
    const owner = this.owner
    if (owner !== undefined) {
      switch (event) {
        case "message":
          owner.onMessage(args[0] as WebSocket.RawData, args[1] as boolean)
          this.releaseReadQueue()
          return true
        case "ping":
          owner.onPing(args[0] as Buffer)
          break
        case "pong":
          owner.onPong()
          break
        case "error":
          // handled: an 'error' without listeners would throw
          owner.onSocketGone()
          return true
        case "close":
          owner.onSocketGone()
          break
      }
    }
    return super.emit(event, ...args)
  }

  /**
   * ws's Receiver queues incoming chunks in an array that keeps the room it grew to (152 bytes) once emptied, so
   * every connection that ever sent a frame — a subscribe, a heartbeat's pong — would keep it while idle. An empty
   * queue is replaced by a new empty array, which has no room allocated. Relies on ws 8's Receiver (`_receiver`,
   * `_buffers`), checked at runtime: with other internals nothing is touched.
   */
  private releaseReadQueue(): void {
    const receiver = (this as unknown as { _receiver?: { _buffers?: unknown } })._receiver
    if (Array.isArray(receiver?._buffers) && receiver._buffers.length === 0) receiver._buffers = []
  }
}
