/**
 * `tidings/react` (useConnectionState, useChannel) in Chromium: a page bundled by esbuild from
 * support/reactPage.ts — tidings' browser client and hooks, React 19 in StrictMode — shows a run's events and the
 * connection's state while the node it is connected to restarts mid-run.
 *
 * Two `tidings serve` nodes share a private Redis, so the channel's history outlives either: the run lives on the
 * agent node, the page connects to the page node. The run waits at its checkpoint; the page node shuts down and
 * the component shows `reconnecting`; the checkpoint is answered and the run publishes the rest meanwhile; the
 * node starts again and the component shows `open`, then every event of the run exactly once, in order (each
 * row's offset, compared with Node's reading of the channel from the agent node), no reset, the whole streamed
 * message, and an event published afterwards.
 */
import { randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startRedisServer } from "../support/redisServer.ts"
import { requireBinary } from "../support/requireBinary.ts"
import {
  answerTo,
  chromiumFor,
  launchChromium,
  offsetOf,
  publishOverHttp,
  referenceStream,
  type StaticServer,
  serveStatic,
  startNode,
  startRun,
  stopAllNodes,
  tokenFor,
  waitFor
} from "./support/browser.ts"

const SUITE = "tidings/react page (browser)"
const chromiumPath = chromiumFor(SUITE)
const redisBinary = chromiumPath === undefined ? undefined : requireBinary("redis-server", `${SUITE} on Redis`)

const HTML = `<!doctype html>
<meta charset="utf-8">
<title>tidings/react</title>
<link rel="icon" href="data:,">
<div id="root"></div>
<script src="/app.js"></script>
`

/** Bundles support/reactPage.ts (with src/client, src/react, React and react-dom) into an IIFE in a temp dir. */
const bundlePage = async (): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "tidings-react-page-"))
  try {
    const outfile = join(dir, "app.js")
    await build({
      entryPoints: [fileURLToPath(new URL("./support/reactPage.ts", import.meta.url))],
      outfile,
      bundle: true,
      format: "iife",
      platform: "browser",
      target: "es2022",
      // React's development build: StrictMode mounts twice, and React's warnings reach the console
      define: { "process.env.NODE_ENV": '"development"' },
      logLevel: "silent"
    })
    return readFileSync(outfile, "utf8")
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

interface Row {
  readonly offset: number
  readonly event: string
}

const rowsOf = (page: Page): Promise<Array<Row>> =>
  page.$$eval("#events li", (items) =>
    items.map((item) => ({
      offset: Number((item as HTMLElement).dataset.offset),
      event: (item as HTMLElement).dataset.event ?? ""
    }))
  )

const stateIs = (page: Page, state: string, timeout: number) =>
  page.waitForSelector(`#state[data-state="${state}"]`, { timeout })

describe.skipIf(chromiumPath === undefined || redisBinary === undefined)(`${SUITE} on Redis`, () => {
  let browser: Browser
  let site: StaticServer

  beforeAll(async () => {
    const [launched, script] = await Promise.all([launchChromium(chromiumPath!), bundlePage()])
    browser = launched
    site = await serveStatic({
      "/index.html": { type: "text/html; charset=utf-8", body: HTML },
      "/app.js": { type: "text/javascript; charset=utf-8", body: script }
    })
  })

  afterAll(async () => {
    await site?.close()
    await browser?.close()
    await stopAllNodes()
  })

  it("shows reconnecting, then open, and every event of the run once when its node restarts mid-run", async () => {
    const redis = await startRedisServer(redisBinary!)
    try {
      const shared = { TIDINGS_TRANSPORT: "redis", REDIS_URL: redis.url, REDIS_KEY_PREFIX: `react-${randomUUID()}:` }
      // four steps: the checkpoint at step 3 holds the run until the test answers it
      const [agentNode, pageNode] = await Promise.all([
        startNode("agent", { ...shared, TIDINGS_AGENT_BEAT_MS: "150", TIDINGS_AGENT_STEPS: "4" }),
        startNode("page", shared)
      ])
      const query = "Find a quiet cafe near the station"
      const run = await startRun(agentNode, "react-user", query)
      const reference = await referenceStream(agentNode, run.channel).catch((error: unknown) => {
        run.close()
        throw error
      })
      const context = await browser.newContext()
      try {
        const page = await context.newPage()
        const problems: Array<string> = []
        page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
        page.on("console", (message) => {
          // the browser logs each refused reconnect attempt while the node is down; anything else is a problem
          if (message.type() === "error" && !message.text().startsWith("WebSocket connection to")) {
            problems.push(`console: ${message.text()}`)
          }
        })
        const params = new URLSearchParams({
          ws: pageNode.ws,
          token: await tokenFor("react-page"),
          channel: run.channel
        })
        await page.goto(`${site.url}/index.html?${params}`)

        await stateIs(page, "open", 15_000)
        await page.waitForSelector('#events li[data-event="checkpoint_required"]', { timeout: 20_000 })
        const before = await rowsOf(page)
        expect(before.filter((row) => row.event === "completion")).toEqual([])

        // the page's node goes away: the component says so; the run goes on on the agent node
        await pageNode.stop()
        await stateIs(page, "reconnecting", 15_000)
        await run.approve("s3")
        await waitFor(
          "the run publishes while the page's node is down",
          () => reference.messages.length >= before.length + 3,
          15_000,
          () => agentNode.output()
        )
        expect(await rowsOf(page)).toEqual(before)

        await pageNode.start()
        await stateIs(page, "open", 15_000)
        await page.waitForSelector('#events li[data-event="completion"]', { timeout: 15_000 })
        const live = await publishOverHttp(agentNode, run.channel, "notification", {
          level: "info",
          title: "Archived",
          message: "The run was archived"
        })
        await page.waitForSelector(`#events li[data-offset="${live.offset}"]`, { timeout: 15_000 })
        await waitFor(
          "the reference stream reads the live event",
          () => reference.messages.some((m) => offsetOf(m.id) === live.offset),
          10_000
        )

        // up to the live event: whatever else comes on the channel later is not the page's to have yet
        const rows = (await rowsOf(page)).filter((row) => row.offset <= live.offset)
        const logged = reference.messages
          .map((m) => ({ offset: offsetOf(m.id), event: m.event }))
          .filter((row) => row.offset <= live.offset)
        expect(rows.map((row) => row.offset)).toEqual(rows.map((_, i) => i + 1))
        expect(rows).toEqual(logged)
        expect(rows.slice(0, before.length)).toEqual(before)
        expect(rows.filter((row) => row.event === "completion")).toHaveLength(1)
        expect(await page.getAttribute("#resets", "data-resets")).toBe("0")
        expect(await page.textContent("#message")).toBe(answerTo(query))
        const rendered = await page.evaluate(
          () => (window as unknown as { renderedStates: Array<string> }).renderedStates
        )
        expect(rendered.slice(rendered.indexOf("open"))).toEqual(["open", "reconnecting", "open"])
        expect(problems).toEqual([])
      } finally {
        await context.close()
        reference.close()
        run.close()
      }
    } finally {
      await stopAllNodes()
      await redis.dispose()
    }
  })
})
