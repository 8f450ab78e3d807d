/**
 * tidings inside an existing Node program, started with the Promise API (`startServer`, src/server/Embedded.ts)
 * on the program's own HTTP server: its WebSocket path and HTTP routes are tidings', everything else stays the
 * program's — its HTTP routes and a second `ws` server taking the upgrades of its own path, before and after tidings
 * closes. Without another upgrade listener, an upgrade to another path is answered 404 rather than left hanging.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { WebSocket, WebSocketServer } from "ws"
import { type RunningServer, startServer } from "../../src/server/Embedded.ts"
import { ChatProtocol } from "./support/chatProtocol.ts"
import { connectRaw } from "./support/rawClient.ts"
import { chatHandlers, SECRET, sign } from "./support/testServer.ts"

/** The chat test server's options for `startServer`, with where it listens. */
const chat = (where: { readonly server: Server } | { readonly port: number }) => ({
  protocol: ChatProtocol,
  handlers: chatHandlers,
  auth: { secret: SECRET },
  ...where
})

const listen = (server: Server) =>
  new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)))

/** Opens a plain WebSocket; resolves with the first message, or rejects with the HTTP status of a refusal. */
const firstMessage = (url: string) =>
  new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on("message", (data) => {
      resolve(data.toString())
      ws.close()
    })
    ws.on("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    ws.on("error", reject)
  })

describe("embedding in an existing Node program", () => {
  let http: Server | undefined
  let tidings: RunningServer<typeof ChatProtocol> | undefined

  afterEach(async () => {
    await tidings?.close()
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()))
    tidings = undefined
    http = undefined
  })

  it("takes its own path and routes only; the program's routes and WebSocket server keep working", async () => {
    http = createServer((req, res) => {
      if (req.url === "/hello") res.writeHead(200, { "content-type": "text/plain" }).end("hi")
    })
    // the program's own WebSocket endpoint, in the documented ws way for a shared server
    const chatSockets = new WebSocketServer({ noServer: true })
    chatSockets.on("connection", (ws) => ws.send("welcome to chat"))
    http.on("upgrade", (req, socket, head) => {
      if (req.url === "/chat")
        chatSockets.handleUpgrade(req, socket, head, (ws) => chatSockets.emit("connection", ws, req))
    })
    const port = await listen(http)
    tidings = await startServer(chat({ server: http }))
    expect(tidings.port).toBe(port)

    expect(await firstMessage(`ws://127.0.0.1:${port}/chat`)).toBe("welcome to chat")
    expect(await (await fetch(`http://127.0.0.1:${port}/hello`)).text()).toBe("hi")
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200)
    expect(await tidings.ready()).toBe(true)

    const client = await connectRaw(`ws://127.0.0.1:${port}/ws`)
    client.send({ type: "authenticate", token: await sign({ sub: "ann", channels: ["room:*"] }) })
    await client.next((f) => f.type === "welcome")
    client.send({ type: "subscribe", channel: "room:1" })
    await client.next((f) => f.type === "subscribed")
    const position = await tidings.publish("room:1", "said", { from: "app", body: "hello" })
    expect(position.offset).toBe(1)
    const event = await client.next((f) => f.type === "event" && f.channel === "room:1")
    expect(event).toMatchObject({ event: "said", data: { from: "app", body: "hello" }, offset: 1 })
    client.close()

    await tidings.close()
    tidings = undefined
    // the program's endpoint outlives tidings
    expect(await firstMessage(`ws://127.0.0.1:${port}/chat`)).toBe("welcome to chat")
  })

  it("answers an upgrade to another path 404 when nothing else takes upgrades", async () => {
    http = createServer()
    const port = await listen(http)
    tidings = await startServer(chat({ server: http }))
    await expect(firstMessage(`ws://127.0.0.1:${port}/elsewhere`)).rejects.toThrow("HTTP 404")
  })

  it("starts on its own port with the memory transport, and rejects a port in use with the reason", async () => {
    tidings = await startServer(chat({ port: 0 }))
    expect(tidings.port).toBeGreaterThan(0)
    expect((await fetch(`http://127.0.0.1:${tidings.port}/healthz`)).status).toBe(200)
    await expect(startServer(chat({ port: tidings.port }))).rejects.toThrow(/could not start.*EADDRINUSE/s)
  })
})
