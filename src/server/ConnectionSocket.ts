/**
 * The ws WebSocket class the server makes its sockets with (ws's `WebSocket` option): ws's events go straight to
 * the socket's owner, the Connection, instead of through listeners, and pings are answered by the owner (the
 * server turns ws's automatic pong off). Per socket this saves the listener entries, and the closure plus context
 * that ws's automatic pong keeps (about 100 bytes, against the 2.7 KiB bare ws keeps per connection; see
 * docs/performance.md, memory).
 */
import { WebSocket } from "ws"

/** What a socket reports to the connection that owns it. */
export interface SocketOwner {
  onMessage(data: WebSocket.RawData, isBinary: boolean): void
  /** A ping frame from the peer: the owner answers it (RFC 6455 5.5.2). */
  onPing(data: Buffer): void
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
          return true
        case "ping":
          owner.onPing(args[0] as Buffer)
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
}
