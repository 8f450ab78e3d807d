/**
 * ConnectionSocket on its own: ws's events reach the owner without listeners (message, ping, error/close), and
 * after a message ws's emptied read queue is a fresh array — if ws's internals change, this fails and says the
 * per-connection saving is gone.
 */
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { WebSocket, WebSocketServer } from "ws"
import { ConnectionSocket, type SocketOwner } from "../../src/server/connection/ConnectionSocket.ts"
import { until } from "../support/until.ts"

const servers: Array<WebSocketServer> = []
afterEach(() => {
  for (const server of servers.splice(0)) server.close()
})

const recordingOwner = () => {
  const events: Array<string> = []
  const owner: SocketOwner = {
    onMessage: (data, isBinary) => void events.push(`message ${String(data)} ${isBinary}`),
    onPing: (data) => void events.push(`ping ${String(data)}`),
    onPong: () => void events.push("pong"),
    onSocketGone: () => void events.push("gone")
  }
  return { owner, events }
}

describe("ConnectionSocket", () => {
  it("hands messages, pings, pongs and the close to its owner and renews ws's emptied read queue", async () => {
    const server = new WebSocketServer({ port: 0, host: "127.0.0.1", autoPong: false, WebSocket: ConnectionSocket })
    servers.push(server)
    await new Promise((resolve) => server.once("listening", resolve))
    const { owner, events } = recordingOwner()
    const accepted = new Promise<ConnectionSocket>((resolve) =>
      server.once("connection", (socket: ConnectionSocket) => {
        socket.owner = owner
        resolve(socket)
      })
    )
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`)
    const socket = await accepted
    await new Promise((resolve) => client.once("open", resolve))
    const receiver = (socket as unknown as { _receiver: { _buffers: Array<Buffer> } })._receiver
    const queue = receiver._buffers
    client.send("hello")
    expect(await until(() => events.length >= 1)).toBe(true)
    expect(receiver._buffers).toEqual([])
    expect(receiver._buffers).not.toBe(queue)
    client.ping("anyone")
    expect(await until(() => events.length >= 2)).toBe(true)
    client.pong("here")
    expect(await until(() => events.length >= 3)).toBe(true)
    expect(events).toEqual(["message hello false", "ping anyone", "pong"])
    client.close()
    expect(await until(() => events.includes("gone"))).toBe(true)
  })
})
