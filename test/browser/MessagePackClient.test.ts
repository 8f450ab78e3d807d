/**
 * The browser client in Chromium with each wire codec against `tidings serve`: a page bundled by esbuild from
 * support/codecPage.ts (the browser's own WebSocket, msgpackr's browser build) negotiates JSON or MessagePack, each
 * in the compact or the self-describing envelope, and receives the same events, a 60 KB screenshot among them,
 * published over HTTP.
 */
import { randomBytes, randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  chromiumFor,
  launchChromium,
  publishOverHttp,
  type StaticServer,
  serveStatic,
  startNode,
  stopAllNodes,
  type TidingsNode,
  tokenFor
} from "./support/browser.ts"

const SUITE = "browser client with JSON and MessagePack"
const chromiumPath = chromiumFor(SUITE)

const HTML = `<!doctype html>
<meta charset="utf-8">
<title>tidings codecs</title>
<link rel="icon" href="data:,">
<script src="/app.js"></script>
`

/** Bundles support/codecPage.ts (with src/client and msgpackr's browser build) into an IIFE in a temp dir. */
const bundlePage = async (): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "tidings-codec-page-"))
  try {
    const outfile = join(dir, "app.js")
    await build({
      entryPoints: [fileURLToPath(new URL("./support/codecPage.ts", import.meta.url))],
      outfile,
      bundle: true,
      format: "iife",
      platform: "browser",
      target: "es2022",
      logLevel: "silent"
    })
    return readFileSync(outfile, "utf8")
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

interface PageState {
  readonly selected?: string
  readonly received: ReadonlyArray<{ offset: number; event: string; data: unknown }>
}

describe.skipIf(chromiumPath === undefined)(SUITE, () => {
  let browser: Browser
  let site: StaticServer
  let node: TidingsNode

  beforeAll(async () => {
    const [launched, script, started] = await Promise.all([
      launchChromium(chromiumPath!),
      bundlePage(),
      startNode("codecs", {})
    ])
    browser = launched
    node = started
    site = await serveStatic({
      "/index.html": { type: "text/html; charset=utf-8", body: HTML },
      "/app.js": { type: "text/javascript; charset=utf-8", body: script }
    })
  }, 60_000)

  afterAll(async () => {
    await site?.close()
    await browser?.close()
    await stopAllNodes()
  })

  it.each([
    ["json", true],
    ["msgpack", true],
    ["json", false],
    ["msgpack", false]
  ] as const)(
    "receives every event over %s (compact envelope: %s)",
    async (codec, compact) => {
      const channel = `run:${randomUUID()}`
      const context = await browser.newContext()
      try {
        const page = await context.newPage()
        const problems: Array<string> = []
        page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
        const token = await tokenFor("codec-page")
        const params = new URLSearchParams({ ws: node.ws, token, channel, codec, compact: String(compact) })
        await page.goto(`${site.url}/index.html?${params}`)
        await page.waitForFunction(() => (window as unknown as PageState).selected !== undefined, undefined, {
          timeout: 15_000
        })
        // the subscription may still be on its way: publish once the page has its welcome and subscribed
        await page.waitForTimeout(300)
        const screenshot = { mime: "image/png", data: randomBytes(45_000).toString("base64") }
        const published = [
          { event: "status", data: { phase: "thinking", detail: "Reading the documents" } },
          { event: "browser_update", data: { sessionId: "s-1", screenshot, url: "https://example.com/" } },
          { event: "status", data: { phase: "browsing" } }
        ]
        for (const { event, data } of published) await publishOverHttp(node, channel, event, data)
        // the node announces the page's own join on the channel (presence: `user_activity`) before these
        const ours = ({ event }: { event: string }) => event !== "user_activity"
        await page.waitForFunction(
          () => (window as unknown as PageState).received.filter((e) => e.event !== "user_activity").length >= 3,
          undefined,
          { timeout: 15_000 }
        )
        const state = await page.evaluate(() => {
          const { selected, received } = window as unknown as PageState
          return { selected, received }
        })
        expect(state.selected).toBe(`tidings.agent.v2.${codec}${compact ? ".compact" : ""}`)
        expect(state.received.filter(ours).map(({ event, data }) => ({ event, data }))).toEqual(published)
        const offsets = state.received.map((e) => e.offset)
        expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i))
        expect(problems).toEqual([])
      } finally {
        await context.close()
      }
    },
    60_000
  )
})
