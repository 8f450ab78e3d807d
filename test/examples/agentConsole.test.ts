/**
 * The agent-console example in a real browser (Debian's Chromium, headless, through playwright-core), against
 * the example server in a child process, as a user runs it.
 *
 * In memory (always): a run streams its message chunk by chunk, shows steps and a screenshot, survives a page
 * reload, pauses at the checkpoint until approved and completes; a run a backend starts over HTTP appears on the
 * page and is cancelled from it; a graceful stop mid-run ends the run with "stopped" and, after the restart, the
 * page says the server lost its history; a crash mid-run shows "reconnecting" and then "run lost"; without a
 * network the badge says "offline". The in-memory transport keeps nothing across a restart, and the page must
 * say so rather than show stale state.
 * On Redis (when redis-server is installed): the page's node restarts while a run goes on on another node; the
 * page resumes and shows every step exactly once.
 *
 * "Exactly once" is checked on the step rows' ids and on each step's recorded status transitions (a repeated
 * or missed step_update would show there), and on the streamed message's text. Saves test-results/*.png.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync } from "node:fs"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startRedisServer } from "../support/redisServer.ts"
import { requireBinary } from "../support/requireBinary.ts"
import { type ExampleServer, startExampleServer, stopAllExampleServers } from "./support/exampleServer.ts"

const SUITE = "agent console (browser)"
/** Playwright needs an absolute path; requireBinary may answer with a name found on PATH. */
const absolute = (binary: string) =>
  binary.includes("/")
    ? binary
    : execFileSync("sh", ["-c", `command -v ${binary}`])
        .toString()
        .trim()
const chromiumBinary = requireBinary("chromium", SUITE)
const chromiumPath = chromiumBinary === undefined ? undefined : absolute(chromiumBinary)
const API_KEY = "test-api-key-0123456789"
const QUERY = "Find a flight to Lisbon under 200 euros"
/** What the simulated agent streams for `query` (src/agent/SimulatedAgent.ts). */
const answerTo = (query: string) =>
  `Here is what I found about "${query}". I searched, read three pages, and checked the details step by step.`

interface StepRowInfo {
  readonly id: string
  readonly status: string
  readonly transitions: string
}

const stepRows = (page: Page): Promise<Array<StepRowInfo>> =>
  page.$$eval("#steps li", (rows) =>
    rows.map((row) => {
      const data = (row as HTMLElement).dataset
      return { id: data.stepId ?? "", status: data.status ?? "", transitions: data.transitions ?? "" }
    })
  )

const badge = (page: Page, state: "open" | "reconnecting" | "offline", timeout = 15_000) =>
  page.waitForSelector(`#badge[data-state="${state}"]`, { timeout })

const startRunOverHttp = async (server: ExampleServer, user: string, query: string): Promise<string> => {
  const response = await fetch(`${server.url}api/runs`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ user, query })
  })
  expect(response.status).toBe(202)
  const body = (await response.json()) as { runId: string; channel: string }
  expect(body.channel).toBe(`run:${body.runId}`)
  return body.runId
}

/**
 * Records every text the assistant message is set to, to see it grow chunk by chunk: one entry per DOM update,
 * even when the browser hands several updates to the observer at once.
 */
const watchMessage = (page: Page) =>
  page.evaluate(() => {
    const message = document.getElementById("message")!
    const lengths: Array<number> = []
    ;(window as unknown as { lengths: Array<number> }).lengths = lengths
    new MutationObserver((records) => {
      for (const record of records) {
        const added = Array.from(record.addedNodes).reduce(
          (length, node) => length + (node.textContent?.length ?? 0),
          0
        )
        if (added > 0) lengths.push(added)
      }
    }).observe(message, { childList: true })
  })

/**
 * Each test is a whole user session with three or four server starts (a child process under tsx, ~3.7 s each
 * here): the memory one took 23 s alone and 34 s beside the Redis one on a quiet box, and went past 60 s once in CI
 * with other suites running. A stuck step still fails on its own wait (Playwright's 30 s), not on this bound.
 */
const SESSION_TIMEOUT_MS = 150_000

// The two tests share the browser and nothing else (own servers, ports, browser contexts): they run side by side.
describe.skipIf(chromiumPath === undefined)(SUITE, { concurrent: true, timeout: SESSION_TIMEOUT_MS }, () => {
  let browser: Browser

  /** A page in a fresh context (its own cookie and sessionStorage), connected; uncaught errors go to `errors`. */
  const openPage = async (url: string, errors: Array<string>): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 860 } })
    const page = await context.newPage()
    page.on("pageerror", (error) => errors.push(error.message))
    await page.goto(url)
    await badge(page, "open")
    return page
  }

  beforeAll(async () => {
    mkdirSync("test-results", { recursive: true })
    browser = await chromium.launch({
      executablePath: chromiumPath!,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    })
  })

  afterAll(async () => {
    await stopAllExampleServers()
    await browser?.close()
  })

  it("runs end to end on the memory transport: stream, reload, checkpoint, backend run, cancel, restarts", async () => {
    const server = await startExampleServer({ AGENT_CONSOLE_BEAT_MS: "150", TIDINGS_API_KEY: API_KEY })
    try {
      const pageErrors: Array<string> = []
      const page = await openPage(server.url, pageErrors)
      const user = (await page.textContent("#user"))!
      expect(user).toMatch(/^u-[0-9a-f]+$/)

      // a run: the message streams in chunk by chunk, steps and the screenshot appear
      await watchMessage(page)
      await page.fill("#query", QUERY)
      await page.click("#start")
      await page.waitForSelector('#steps li[data-step-id="s1"]')
      const lengths = await page.evaluate(() => (window as unknown as { lengths: Array<number> }).lengths)
      expect(new Set(lengths).size).toBeGreaterThanOrEqual(10)
      expect(lengths).toEqual([...lengths].sort((a, b) => a - b))
      expect(lengths[0]).toBeLessThan(answerTo(QUERY).length)
      await page.waitForSelector("#screenshot:not([hidden])")
      expect(await page.getAttribute("#screenshot", "src")).toMatch(/^data:image\/png;base64,iVBOR/)
      const runId = await page.getAttribute("#run", "data-run-id")

      // a reload mid-run resumes the same run from the saved position
      await page.reload()
      await badge(page, "open")
      expect(await page.getAttribute("#run", "data-run-id")).toBe(runId)

      // the checkpoint waits for the human; approving lets the run complete
      await page.waitForSelector("#checkpoint:not([hidden])")
      expect(await page.textContent("#checkpoint-question")).toBe("Continue with the purchase?")
      expect(await page.getAttribute("#checkpoint", "data-step-id")).toBe("s3")
      await page.screenshot({ path: "test-results/agent-console-checkpoint.png", fullPage: true })
      await page.click("#approve")
      await page.waitForSelector('#outcome[data-kind="succeeded"]')
      await page.waitForSelector("#checkpoint", { state: "hidden" })
      expect(await stepRows(page)).toEqual(
        ["s1", "s2", "s3", "s4", "s5"].map((id) => ({ id, status: "completed", transitions: "running,completed" }))
      )
      expect(await page.textContent("#message")).toBe(answerTo(QUERY))
      expect(await page.getAttribute("#message", "data-done")).toBe("true")
      expect(await page.textContent("#progress-label")).toBe("100%")
      await page.waitForSelector('.toast-success:has-text("Run finished")')
      // the bar animates its width: let it arrive before the picture
      await page.waitForFunction(
        () =>
          document.getElementById("progress-bar")!.getBoundingClientRect().width >=
          document.getElementById("progress")!.getBoundingClientRect().width - 1
      )
      await page.screenshot({ path: "test-results/agent-console.png", fullPage: true })

      // a backend starts a run for this user over HTTP; the page follows it, and cancels it
      const backendRun = await startRunOverHttp(server, user, "Summarise the quarterly report")
      await page.waitForSelector(`#run[data-run-id="${backendRun}"]`)
      expect(await page.textContent("#run-origin")).toBe("started by a backend")
      await page.waitForSelector('#steps li[data-step-id="s1"]')
      await page.click("#cancel")
      await page.waitForSelector('#outcome[data-kind="cancelled"]')
      expect(await page.textContent("#outcome")).toBe("Run cancelled: cancelled from the agent console")
      const cancelled = await stepRows(page)
      expect(new Set(cancelled.map((row) => row.id)).size).toBe(cancelled.length)
      expect(cancelled.filter((row) => row.status === "running")).toEqual([])

      // a graceful stop mid-run: the run ends as stopped, the page reconnects, the server lost the history
      await page.click("#start")
      await page.waitForSelector("#checkpoint:not([hidden])")
      const stoppedRun = await page.getAttribute("#run", "data-run-id")
      await server.stop()
      await page.waitForSelector('#outcome[data-kind="cancelled"]')
      expect(await page.textContent("#outcome")).toBe("Run cancelled: stopped: the server shut down")
      await badge(page, "reconnecting")
      await server.start()
      await badge(page, "open")
      await page.waitForSelector("#history-lost:not([hidden])")
      expect(await page.getAttribute("#run", "data-run-id")).toBe(stoppedRun)
      expect(await stepRows(page)).toEqual([
        { id: "s1", status: "completed", transitions: "running,completed" },
        { id: "s2", status: "completed", transitions: "running,completed" },
        { id: "s3", status: "stopped", transitions: "running" }
      ])

      // a crash mid-run: "reconnecting", then the page says the run was lost (the in-memory log went with it)
      await page.click("#start")
      await page.waitForSelector(`#run:not([data-run-id="${stoppedRun}"]) #checkpoint:not([hidden])`)
      const lostRun = await page.getAttribute("#run", "data-run-id")
      await server.kill()
      await badge(page, "reconnecting")
      expect(await page.isHidden("#outcome")).toBe(true)
      await server.start()
      await badge(page, "open")
      await page.waitForSelector('#outcome[data-kind="lost"]')
      expect(await page.getAttribute("#run", "data-run-id")).toBe(lostRun)
      expect(await page.isHidden("#checkpoint")).toBe(true)
      expect(await page.isEnabled("#start")).toBe(true)
      expect(await stepRows(page)).toEqual([
        { id: "s1", status: "completed", transitions: "running,completed" },
        { id: "s2", status: "completed", transitions: "running,completed" },
        { id: "s3", status: "stopped", transitions: "running" }
      ])
      await page.screenshot({ path: "test-results/agent-console-lost.png", fullPage: true })

      // the browser loses its network: the badge says offline until it is back
      await page.context().setOffline(true)
      await badge(page, "offline")
      await page.context().setOffline(false)
      await badge(page, "open")
      expect(pageErrors).toEqual([])
    } finally {
      await server.stop()
    }
  })

  const redisBinary = requireBinary("redis-server", `${SUITE} on Redis`)
  it.skipIf(redisBinary === undefined)(
    "on Redis, resumes every step exactly once when the page's node restarts while the run goes on",
    async () => {
      const redis = await startRedisServer(redisBinary!)
      const shared = {
        TIDINGS_TRANSPORT: "redis",
        REDIS_URL: redis.url,
        TIDINGS_JWT_SECRET: "a-secret-the-nodes-share-0123456789",
        TIDINGS_API_KEY: API_KEY
      }
      // the run lives on the agent node: no checkpoint (its answer would have to reach that node)
      const [agentNode, pageNode] = await Promise.all([
        startExampleServer({ ...shared, AGENT_CONSOLE_BEAT_MS: "1000", AGENT_CONSOLE_STEPS: "2" }),
        startExampleServer(shared)
      ]).catch(async (error: unknown) => {
        await redis.dispose()
        throw error
      })
      try {
        const pageErrors: Array<string> = []
        const page = await openPage(pageNode.url, pageErrors)
        const user = (await page.textContent("#user"))!
        const query = "Compare three laptops"
        const runId = await startRunOverHttp(agentNode, user, query)
        await page.waitForSelector(`#run[data-run-id="${runId}"] #steps li[data-step-id="s1"]`)
        expect(await page.isHidden("#outcome")).toBe(true)

        await pageNode.stop()
        await badge(page, "reconnecting")
        await pageNode.start()
        await badge(page, "open")
        await page.waitForSelector('#outcome[data-kind="succeeded"]')
        expect(await page.isHidden("#history-lost")).toBe(true)
        expect(await stepRows(page)).toEqual(
          ["s1", "s2"].map((id) => ({ id, status: "completed", transitions: "running,completed" }))
        )
        expect(await page.textContent("#message")).toBe(answerTo(query))
        expect(pageErrors).toEqual([])
      } finally {
        await pageNode.stop()
        await agentNode.stop()
        await redis.dispose()
      }
    }
  )
})
