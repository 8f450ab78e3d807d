/**
 * Prebuilt WebSocket frames written straight to the TCP stream: a real ws client must read them as ordinary text
 * messages of every length class (7-bit, 16-bit and 64-bit lengths), in order with frames ws sends itself, and
 * sockets that cannot take them (a fake, permessage-deflate negotiated) must be refused the stream.
 */
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { WebSocket, WebSocketServer } from "ws"
import { frameStream, textFrame } from "../../src/server/outbound/RawFrames.ts"

const servers: Array<WebSocketServer> = []
afterEach(() => {
  for (const server of servers.splice(0)) server.close()
})

const serve = (perMessageDeflate: boolean) =>
  new Promise<{ server: WebSocketServer; url: string }>((resolve) => {
    const server = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate })
    servers.push(server)
    server.on("listening", () => resolve({ server, url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}` }))
  })

const accepted = (server: WebSocketServer) => new Promise<WebSocket>((resolve) => server.once("connection", resolve))

describe("raw frames", () => {
  it("are read by a ws client as text messages of every length class, in order with ws's own sends", async () => {
    const { server, url } = await serve(false)
    const client = new WebSocket(url, { perMessageDeflate: false })
    const received: Array<string> = []
    const sizes = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]
    const expected: Array<string> = []
    const done = new Promise<void>((resolve) =>
      client.on("message", (data, isBinary) => {
        expect(isBinary).toBe(false)
        received.push(data.toString())
        if (received.length === expected.length) resolve()
      })
    )
    const opened = new Promise((resolve) => client.once("open", resolve))
    const socket = await accepted(server)
    await opened
    const stream = frameStream(socket)
    expect(stream).toBeDefined()
    for (const [i, size] of sizes.entries()) {
      const text = "é".repeat(Math.floor(size / 2)) + "x".repeat(size % 2)
      stream!.write(textFrame(Buffer.from(text)))
      expected.push(text)
      // interleave a frame ws builds itself: both must arrive in write order
      socket.send(`control ${i}`)
      expected.push(`control ${i}`)
    }
    await done
    expect(received).toEqual(expected)
    client.close()
  })

  it("are not used where ws must frame the message itself", async () => {
    expect(frameStream({})).toBeUndefined()
    const { server, url } = await serve(true)
    const client = new WebSocket(url, { perMessageDeflate: true })
    const opened = new Promise((resolve) => client.once("open", resolve))
    const socket = await accepted(server)
    await opened
    expect(socket.extensions).toContain("permessage-deflate")
    expect(frameStream(socket)).toBeUndefined()
    client.close()
  })
})
