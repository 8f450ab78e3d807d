/**
 * The load generator's WebSocket client (bench/loadgen/WireSocket.ts) against a `ws` server: messages of every
 * length class arrive whole and in order however the TCP stream cuts them, fragmented messages are joined, pings
 * are answered, client frames are masked correctly, close codes and refused upgrades are reported.
 */
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { WebSocketServer } from "ws"
import { WireSocket } from "../../bench/loadgen/WireSocket.ts"

let server: WebSocketServer
let url = ""

beforeAll(async () => {
  server = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    perMessageDeflate: false,
    verifyClient: (info, done) => (info.req.url?.includes("refuse") ? done(false, 401) : done(true))
  })
  await new Promise((resolve) => server.once("listening", resolve))
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise((resolve) => server.close(resolve)))

interface Opened {
  readonly socket: WireSocket
  readonly messages: Array<string>
  readonly closed: Promise<number>
}

const open = (path = "/"): Promise<Opened> =>
  new Promise((resolve, reject) => {
    const messages: Array<string> = []
    let onClosed: (code: number) => void = () => {}
    const closed = new Promise<number>((r) => (onClosed = r))
    const socket: WireSocket = new WireSocket(
      `${url}${path}`,
      {},
      {
        onOpen: () => resolve({ socket, messages, closed }),
        onMessage: (text) => messages.push(text),
        onClose: onClosed,
        onError: reject
      }
    )
  })

const until = async (check: () => boolean, ms = 3000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not reached in time")
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe("WireSocket", () => {
  it("receives messages of every length class whole and in order, and fragmented ones joined", async () => {
    const connected = new Promise<import("ws").WebSocket>((resolve) => server.once("connection", resolve))
    const client = await open()
    const peer = await connected
    const sizes = [0, 1, 125, 126, 65_535, 65_536, 200_000]
    const sent = sizes.map((n, i) => `${i}:`.padEnd(n + 2, String.fromCharCode(97 + i)))
    for (const text of sent) peer.send(text)
    peer.send("frag", { fin: false })
    peer.send("ment", { fin: false })
    peer.send("ed", { fin: true })
    peer.send(Buffer.from("binary"), { binary: true })
    await until(() => client.messages.length === sent.length + 2)
    expect(client.messages).toEqual([...sent, "fragmented", "binary"])
    client.socket.terminate()
  })

  it("sends masked text the server reads back, answers pings, and reports the server's close code", async () => {
    const connected = new Promise<import("ws").WebSocket>((resolve) => server.once("connection", resolve))
    const client = await open()
    const peer = await connected
    const received: Array<string> = []
    peer.on("message", (data) => received.push(String(data)))
    const pong = new Promise<string>((resolve) => peer.once("pong", (data) => resolve(String(data))))
    client.socket.send("hello")
    client.socket.send("x".repeat(70_000))
    peer.ping("are you there")
    expect(await pong).toBe("are you there")
    await until(() => received.length === 2)
    expect(received).toEqual(["hello", "x".repeat(70_000)])
    peer.close(4001, "bye")
    expect(await client.closed).toBe(4001)
    expect(client.socket.isOpen).toBe(false)
  })

  it("reports a refused upgrade with its status, once", async () => {
    const errors: Array<string> = []
    await new Promise<void>((resolve) => {
      new WireSocket(
        `${url}/refuse`,
        {},
        {
          onOpen: () => errors.push("opened"),
          onMessage: () => undefined,
          onClose: () => errors.push("closed"),
          onError: (error) => {
            errors.push(error.message)
            setTimeout(resolve, 100)
          }
        }
      )
    })
    expect(errors).toEqual(["HTTP 401"])
  })
})
