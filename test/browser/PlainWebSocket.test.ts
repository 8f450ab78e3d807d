/**
 * A browser page with no library at all — `new WebSocket(url)` (no subprotocol: a plain connection, newest
 * version, one frame per message, token in the URL) and `JSON` — starts a run of the simulated agent with a
 * `command` frame, subscribes to the run's channel from its start, and receives the whole run, in Chromium.
 *
 * The page's events are checked to be the channel's log as the server holds it: offsets 1, 2, 3… with none
 * missing or repeated, the events replayed before `subscribed` counted by it, the streamed message whole, one
 * succeeded completion at the end, and every event equal (name, offset, data) to what Node reads afterwards
 * from the same channel as Server-Sent Events from its start.
 */
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Message } from "../server/support/sseClient.ts"
import {
  answerTo,
  chromiumFor,
  isCompletion,
  launchChromium,
  offsetOf,
  referenceStream,
  type StaticServer,
  serveStatic,
  startNode,
  stopAllNodes,
  type TidingsNode,
  throughCompletion,
  tokenFor,
  waitFor
} from "./support/browser.ts"

const SUITE = "plain WebSocket page (browser)"
const chromiumPath = chromiumFor(SUITE)

/** The whole page: the browser's WebSocket and JSON, nothing else. Every frame it receives goes to `window.received`. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>plain WebSocket</title>
<ol id="events"></ol>
<script>
  const params = new URLSearchParams(location.search)
  const received = []
  window.received = received
  const ws = new WebSocket(params.get("ws")) // no subprotocol
  ws.onmessage = (message) => {
    const frame = JSON.parse(message.data)
    received.push(frame)
    if (frame.type === "welcome") {
      ws.send(JSON.stringify({ type: "command", id: "start-1", name: "start", payload: { query: params.get("query"), mode: "auto" } }))
    } else if (frame.type === "reply" && frame.id === "start-1" && frame.ok) {
      ws.send(JSON.stringify({ type: "subscribe", channel: frame.result.channel, fromStart: true }))
    } else if (frame.type === "event") {
      const item = document.createElement("li")
      item.textContent = frame.offset + " " + frame.event
      document.getElementById("events").append(item)
    }
  }
  ws.onclose = (event) => received.push({ type: "closed", code: event.code })
</script>
`

interface Frame {
  readonly type: string
  readonly [key: string]: unknown
}

interface EventFrame extends Frame {
  readonly channel: string
  readonly epoch: string
  readonly offset: number
  readonly event: string
  readonly data: unknown
}

const framesOf = (page: Page) => page.evaluate(() => (window as unknown as { received: Array<Frame> }).received)

describe.skipIf(chromiumPath === undefined)(SUITE, () => {
  let browser: Browser
  let node: TidingsNode
  let site: StaticServer

  beforeAll(async () => {
    ;[browser, node, site] = await Promise.all([
      launchChromium(chromiumPath!),
      // two steps: no checkpoint (it comes at step 3); 100 ms beats: a run of about two seconds
      startNode("plain-ws", { TIDINGS_AGENT_BEAT_MS: "100", TIDINGS_AGENT_STEPS: "2" }),
      serveStatic({ "/plain.html": { type: "text/html; charset=utf-8", body: PAGE } })
    ])
  })

  afterAll(async () => {
    await site?.close()
    await browser?.close()
    await stopAllNodes()
  })

  it("receives a run's events in order, each once, through to its completion", async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      const pageErrors: Array<string> = []
      page.on("pageerror", (error) => pageErrors.push(error.message))
      const query = "Plan a weekend in Porto"
      const token = await tokenFor("plain-page")
      await page.goto(`${site.url}/plain.html?${new URLSearchParams({ ws: `${node.ws}?token=${token}`, query })}`)

      await page.waitForFunction(
        () =>
          (window as unknown as { received: Array<{ type: string; event?: string }> }).received.some(
            (frame) => frame.type === "event" && frame.event === "completion"
          ),
        undefined,
        { timeout: 20_000 }
      )
      const frames = await framesOf(page)
      const welcome = frames.find((f) => f.type === "welcome")
      expect(welcome).toMatchObject({ protocol: "agent", version: 2, user: "plain-page" })
      const reply = frames.find((f) => f.type === "reply") as { ok: boolean; result: { channel: string } } | undefined
      expect(reply?.ok).toBe(true)
      const channel = reply!.result.channel
      expect(frames.filter((f) => f.type === "error" || f.type === "closed")).toEqual([])

      const events = frames.filter((f): f is EventFrame => f.type === "event")
      expect(new Set(events.map((e) => e.channel))).toEqual(new Set([channel]))
      // each offset once, none missing, in order, through to the run's one completion
      expect(events.map((e) => e.offset)).toEqual(events.map((_, i) => i + 1))
      expect(events.filter((e) => e.event === "completion").map((e) => e.data)).toEqual([
        expect.objectContaining({ outcome: "succeeded" })
      ])
      // replayed events come before `subscribed` (and so may live ones published meanwhile, which `replayed` does
      // not count); its position accounts for every event sent before it
      const subscribedAt = frames.findIndex((f) => f.type === "subscribed")
      const beforeSubscribed = frames.slice(0, subscribedAt).filter((f): f is EventFrame => f.type === "event")
      const subscribed = frames[subscribedAt] as Frame & { position: { offset: number }; replayed: number }
      expect(subscribed.channel).toBe(channel)
      expect(subscribed.replayed).toBeLessThanOrEqual(beforeSubscribed.length)
      expect(subscribed.position.offset).toBe(beforeSubscribed.at(-1)?.offset ?? 0)
      const chunks = events.filter((e) => e.event === "message_chunk").map((e) => (e.data as { text: string }).text)
      expect(chunks.join("")).toBe(answerTo(query))
      const steps = events
        .filter((e) => e.event === "step_update")
        .map((e) => e.data as { step: { id: string }; status: string })
      expect(steps.map((d) => `${d.step.id} ${d.status}`)).toEqual([
        "s1 running",
        "s1 completed",
        "s2 running",
        "s2 completed"
      ])

      // the page's events are the channel's log: compare with Node's read of the channel from its start
      const reference = await referenceStream(node, channel)
      try {
        await waitFor("the reference stream reads the whole run", () => reference.messages.some(isCompletion), 10_000)
        const asMessage = (e: EventFrame): Message => ({ id: `${e.epoch}:${e.offset}`, event: e.event, data: e.data })
        const run = throughCompletion(events.map(asMessage))
        expect(run).toEqual(throughCompletion(reference.messages))
        expect(run.map((m) => offsetOf(m.id))).toEqual(run.map((_, i) => i + 1))
      } finally {
        reference.close()
      }
      expect(pageErrors).toEqual([])
    } finally {
      await context.close()
    }
  })
})
