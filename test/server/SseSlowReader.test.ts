/**
 * A Server-Sent Events reader that stops reading (src/server/http/Sse.ts, slow readers). Two readers follow one
 * channel over plain Node HTTP; one never consumes its response (Node stops reading its socket once a small
 * buffer is full, so the server's writes back up through the kernel into the server's own buffer) while 2,000
 * events of 32 KiB (64 MB) are published. The server must cut that stream off once its unsent bytes pass
 * `maxOutboundBytes` (256 KiB here), count it in `tidings_sse_slow_readers_total`, and keep no more for it than
 * about that bound: the server's heap and external memory after a full GC grow by far less than the 64 MB the
 * reader did not take (a stream that kept queueing would hold most of them; the channel keeps 16 events). The
 * reader that keeps up gets every event, whole and in order, and is not cut off. The stalled reader, reading
 * again, gets a clean prefix of the events and then its connection closes (the server drops a cut-off reader
 * instead of waiting for it to read what was sent); reconnecting with its Last-Event-ID
 * it is told plainly (`reset`, trimmed) that the rest is gone, never given a silent hole.
 */
import { type ClientRequest, type IncomingMessage, request } from "node:http"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { describe, expect, it } from "vitest"
import * as Server from "../../src/server/Server.ts"
import { defaultRetention } from "../../src/transports/Transport.ts"
import { until } from "../support/until.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

const BOUND = 256 * 1024
const EVENTS = 2000
const BODY = 32 * 1024
const KEPT = 16

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

/** This process's heap and external (Buffer) memory after full collections, in bytes. */
const settledMemory = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
  const { heapUsed, external } = process.memoryUsage()
  return heapUsed + external
}

interface Reader {
  readonly status: number
  readonly req: ClientRequest
  readonly res: IncomingMessage
  /** Offsets (from the ids) of the `said` events received, in order. */
  readonly offsets: Array<number>
  /** `said` events whose data was not the event published at that offset. */
  bad: number
  epoch: string
  /** Other events (name and data). */
  readonly others: Array<{ readonly event: string; readonly id: string | undefined; readonly data: unknown }>
  ended: boolean
  /** Starts consuming the response (a paused reader reads again). */
  readonly read: () => void
}

/**
 * `GET` the channel as SSE on its own connection; with `paused`, nothing of the body is consumed until `read()`.
 * Keeps only offsets and counts (no bodies), so this process's memory stays the server's.
 */
const openReader = (port: number, channel: string, headers: Record<string, string>, paused: boolean) =>
  new Promise<Reader>((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port,
      path: `/v1/channels/${encodeURIComponent(channel)}/events`,
      agent: false,
      headers: { accept: "text/event-stream", ...headers }
    })
    req.on("error", reject)
    req.on("response", (res) => {
      let pending = ""
      let reading = false
      const reader: Reader = {
        status: res.statusCode ?? 0,
        req,
        res,
        offsets: [],
        bad: 0,
        epoch: "",
        others: [],
        ended: false,
        read: () => {
          if (reading) return
          reading = true
          res.setEncoding("utf8")
          res.on("data", (chunk: string) => {
            pending += chunk
            let end = pending.indexOf("\n\n")
            while (end >= 0) {
              const fields = new Map<string, string>()
              for (const line of pending.slice(0, end).split("\n")) {
                if (line === "" || line.startsWith(":")) continue
                const at = line.indexOf(":")
                fields.set(line.slice(0, at), line.slice(at + 1).replace(/^ /, ""))
              }
              pending = pending.slice(end + 2)
              end = pending.indexOf("\n\n")
              const data = fields.get("data")
              if (data === undefined) continue
              const id = fields.get("id")
              const event = fields.get("event") ?? "message"
              if (event !== "said" || id === undefined) {
                reader.others.push({ event, id, data: JSON.parse(data) })
                continue
              }
              const at = id.lastIndexOf(":")
              const offset = Number(id.slice(at + 1))
              reader.epoch = id.slice(0, at)
              reader.offsets.push(offset)
              const said = JSON.parse(data) as { from: string; body: string }
              if (said.from !== String(offset) || said.body.length !== BODY) reader.bad++
            }
          })
          res.on("end", () => (reader.ended = true))
          // a reader cut off is dropped: its connection closes after what the kernel still held for it
          res.on("close", () => (reader.ended = true))
          res.on("error", () => (reader.ended = true))
        }
      }
      if (!paused) reader.read()
      resolve(reader)
    })
    req.end()
  })

const scrape = async (port: number, name: string): Promise<number | undefined> => {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text())
  const match = new RegExp(`^${name} (\\d+)`, "m").exec(text)
  return match ? Number(match[1]) : undefined
}

describe("an SSE reader that stops reading", () => {
  it("is cut off at the outbound bound and counted, without the server holding what it did not read, while a reader that keeps up gets every event", async () => {
    const scope = await Effect.runPromise(Scope.make())
    const server = await Effect.runPromise(
      Layer.buildWithScope(
        testServerLayer({
          limits: { maxOutboundBytes: BOUND },
          transport: { retention: () => ({ maxEntries: KEPT, maxAgeMs: defaultRetention.maxAgeMs }) }
        }),
        scope
      ).pipe(Effect.map((context) => Context.get(context, Server.TidingsServer)))
    )
    const readers: Array<Reader> = []
    try {
      const channel = `room:slow-sse-${Math.random().toString(36).slice(2, 8)}`
      const auth = { authorization: `Bearer ${await sign({ sub: "ann", channels: ["room:*"] })}` }
      const fast = await openReader(server.port, channel, auth, false)
      const slow = await openReader(server.port, channel, auth, true)
      readers.push(fast, slow)
      expect([fast.status, slow.status]).toEqual([200, 200])
      expect(await until(() => server.stats.sseOpen === 2, 3000)).toBe(true)

      const before = await settledMemory()
      const body = "b".repeat(BODY)
      for (let n = 1; n <= EVENTS; n++) {
        await server.publishPromise(channel, "said", { from: String(n), body })
        // one event per turn of the event loop, and a pause now and then: the reader that keeps up (in this
        // process) reads between them, so only the stalled reader's bytes pile up
        await new Promise((resolve) => (n % 16 === 0 ? setTimeout(resolve, 2) : setImmediate(resolve)))
      }
      expect(await until(() => fast.offsets.length >= EVENTS, 20_000), `fast reader got ${fast.offsets.length}`).toBe(
        true
      )
      expect(await until(() => server.stats.sseSlowReaders >= 1, 5000)).toBe(true)
      const after = await settledMemory()
      const grownMiB = (after - before) / 1048576
      const slowBytesRead = slow.req.socket?.bytesRead ?? 0

      // the reader that kept up: every event, whole, in order, once; still open
      expect(fast.offsets).toEqual(Array.from({ length: EVENTS }, (_, i) => i + 1))
      expect(fast.bad).toBe(0)
      expect(fast.others).toEqual([])
      expect(fast.ended).toBe(false)
      // the stalled one: cut off, counted once, no longer an open stream
      expect(server.stats.sseSlowReaders).toBe(1)
      expect(server.stats.sseOpen).toBe(1)
      expect(await scrape(server.port, "tidings_sse_slow_readers_total")).toBe(1)
      expect(await scrape(server.port, "tidings_sse_streams_open")).toBe(1)
      // it really stopped reading: its socket took a small part of the 64 MB
      expect(slowBytesRead).toBeLessThan((EVENTS * BODY) / 4)
      // and the server did not keep the rest for it (a stream that kept queueing would hold tens of MB here)
      expect(grownMiB, `server memory grew by ${grownMiB.toFixed(1)} MiB`).toBeLessThan(16)

      // reading again: a clean prefix of the events, then the end of the stream
      slow.read()
      expect(await until(() => slow.ended, 10_000), "the stalled reader's stream ends").toBe(true)
      const got = slow.offsets.length
      expect(got).toBeGreaterThan(0)
      expect(got).toBeLessThan(EVENTS - KEPT)
      expect(slow.offsets).toEqual(Array.from({ length: got }, (_, i) => i + 1))
      expect(slow.bad).toBe(0)
      expect(slow.others).toEqual([])
      console.log(
        `SSE slow reader: cut off after ${got} of ${EVENTS} events of ${BODY / 1024} KiB (bound ${BOUND / 1024} KiB); ` +
          `its socket had read ${(slowBytesRead / 1048576).toFixed(1)} MiB; server heap + external grew by ${grownMiB.toFixed(1)} MiB`
      )

      // resuming from its Last-Event-ID: the rest is past the channel's retention, and it is told so
      const again = await openReader(server.port, channel, { ...auth, "last-event-id": `${fast.epoch}:${got}` }, false)
      readers.push(again)
      expect(await until(() => again.others.length > 0, 3000)).toBe(true)
      expect(again.others[0]).toMatchObject({
        event: "reset",
        id: `${fast.epoch}:${EVENTS}`,
        data: { reason: "trimmed", position: { epoch: fast.epoch, offset: EVENTS } }
      })
      expect(again.offsets).toEqual([])
    } finally {
      for (const reader of readers) reader.req.destroy()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)

  it("a reader that keeps up is not cut off by an event larger than the bound, a burst, or a long replay", async () => {
    const scope = await Effect.runPromise(Scope.make())
    const server = await Effect.runPromise(
      Layer.buildWithScope(testServerLayer({ limits: { maxOutboundBytes: BOUND } }), scope).pipe(
        Effect.map((context) => Context.get(context, Server.TidingsServer))
      )
    )
    const readers: Array<Reader> = []
    try {
      const auth = { authorization: `Bearer ${await sign({ sub: "ann", channels: ["room:*"] })}` }
      const live = `room:big-${Math.random().toString(36).slice(2, 8)}`
      const reader = await openReader(server.port, live, auth, false)
      readers.push(reader)
      expect(await until(() => server.stats.sseOpen === 1, 3000)).toBe(true)
      // one event of 300 KiB (over the 256 KiB bound), then 12 of 32 KiB published at once
      await server.publishPromise(live, "said", { from: "1", body: "b".repeat(300 * 1024) })
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          server.publishPromise(live, "said", { from: String(i + 2), body: "b".repeat(BODY) })
        )
      )
      expect(await until(() => reader.offsets.length === 13, 10_000), `got ${reader.offsets.length}`).toBe(true)
      expect(reader.offsets).toEqual(Array.from({ length: 13 }, (_, i) => i + 1))

      // a replay of 10,000 events (about 1.5 MB, six times the bound) is paced, not cut off
      const history = `room:long-${Math.random().toString(36).slice(2, 8)}`
      for (let n = 1; n <= 10_000; n++)
        await server.publishPromise(history, "said", { from: String(n), body: "x".repeat(60) })
      const url = `/v1/channels/${encodeURIComponent(history)}/events?fromStart=1`
      const full = await new Promise<{ count: number; last: number }>((resolve, reject) => {
        const req = request({
          host: "127.0.0.1",
          port: server.port,
          path: url,
          agent: false,
          headers: { accept: "text/event-stream", ...auth }
        })
        req.on("error", reject)
        req.on("response", (res) => {
          let count = 0
          let last = 0
          let text = ""
          res.setEncoding("utf8")
          res.on("data", (chunk: string) => {
            text += chunk
            const parts = text.split("\n\n")
            text = parts.pop() ?? ""
            for (const part of parts) {
              const id = /^id: .*:(\d+)$/m.exec(part)
              if (id && part.includes("event: said")) {
                count++
                last = Number(id[1])
              }
            }
            if (count === 10_000) {
              req.destroy()
              resolve({ count, last })
            }
          })
        })
        req.end()
      })
      expect(full).toEqual({ count: 10_000, last: 10_000 })
      expect(server.stats.sseSlowReaders).toBe(0)
    } finally {
      for (const reader of readers) reader.req.destroy()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)
})
