/**
 * Shared by the browser tests (test/browser): Debian's Chromium through playwright-core (a visible skip when it
 * is missing locally, a failure under CI=true, as requireBinary decides), `tidings serve` processes that stop and
 * start again on their port (src/bin/tidings.ts, the product's CLI, in a child process so a test can restart it
 * mid-run), tokens, runs of the simulated agent started and answered from the test with the Node client, the
 * channel read from the start as Server-Sent Events by Node (the reference a page's events are compared with), and
 * a tiny static file server on 127.0.0.1.
 */
import { execFileSync } from "node:child_process"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import { SignJWT } from "jose"
import { type Browser, chromium } from "playwright-core"
import { type Client, make as makeClient } from "../../../src/client/node.ts"
import { AgentProtocol } from "../../../src/protocol/agent/index.ts"
import { CLI_SCRIPT, killAll, type NodeProcess, spawnNode } from "../../cluster/support/cluster.ts"
import { type Message, openStream, type Stream } from "../../server/support/sseClient.ts"
import { freePort } from "../../support/freePort.ts"
import { requireBinary } from "../../support/requireBinary.ts"
import { until } from "../../support/until.ts"

export const SECRET = "browser-tests-secret-0123456789abcdef"
export const API_KEY = "browser-tests-api-key-0123456789"

/** Chromium's absolute path (Playwright needs one), or undefined after requireBinary announced the skip. */
export const chromiumFor = (suite: string): string | undefined => {
  const binary = requireBinary("chromium", suite)
  if (binary === undefined || binary.includes("/")) return binary
  return execFileSync("sh", ["-c", `command -v ${binary}`])
    .toString()
    .trim()
}

export const launchChromium = (executablePath: string): Promise<Browser> =>
  chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    timeout: 30_000
  })

// ---- tidings serve ---------------------------------------------------------------------------------------------

export interface TidingsNode {
  readonly name: string
  readonly port: number
  /** `ws://127.0.0.1:<port>/ws` */
  readonly ws: string
  /** `http://127.0.0.1:<port>` */
  readonly http: string
  /** SIGTERM: a graceful shutdown (goaway, SSE streams ended); resolves when the process has exited. */
  readonly stop: () => Promise<void>
  /** Starts the process again on the same port; resolves when /readyz answers 200. */
  readonly start: () => Promise<void>
  readonly output: () => string
}

/**
 * `tidings serve` on a port below the ephemeral range (so a browser's reconnect attempts never take it while the
 * node is down), with `env` (transport, secret, agent pace) on top of the shared secret and API key.
 */
export const startNode = async (name: string, env: Record<string, string>): Promise<TidingsNode> => {
  const port = await freePort()
  const options = {
    name,
    script: CLI_SCRIPT,
    args: ["serve"],
    port,
    env: { TIDINGS_JWT_SECRET: SECRET, TIDINGS_API_KEY: API_KEY, ...env },
    readyTimeoutMs: 30_000
  }
  let current: NodeProcess | undefined
  let lastOutput = ""
  const start = async () => {
    // a socket of the last process may hold the port for a moment
    for (let attempt = 1; ; attempt++) {
      try {
        current = await spawnNode(options)
        return
      } catch (error) {
        if (attempt >= 5 || !String(error).includes("EADDRINUSE")) throw error
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
    }
  }
  await start()
  return {
    name,
    port,
    ws: `ws://127.0.0.1:${port}/ws`,
    http: `http://127.0.0.1:${port}`,
    stop: async () => {
      const node = current
      if (node === undefined) return
      current = undefined
      // a graceful stop takes well under a second; one that hangs is a bug to see, not to wait on
      const stuck = setTimeout(() => void node.kill("SIGKILL"), 10_000)
      await node.kill("SIGTERM")
      clearTimeout(stuck)
      lastOutput = node.output()
    },
    start,
    output: () => current?.output() ?? lastOutput
  }
}

/** Kills every node this test file started (afterAll). */
export const stopAllNodes = killAll

// ---- tokens, runs, the reference stream ------------------------------------------------------------------------

/** A JWT for `user` that may read run channels (what a page's backend would hand it). */
export const tokenFor = (user: string): Promise<string> =>
  new SignJWT({ channels: ["run:*"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(SECRET))

/** What the simulated agent streams as its message for `query` (src/agent/SimulatedAgent.ts). */
export const answerTo = (query: string) =>
  `Here is what I found about "${query}". I searched, read three pages, and checked the details step by step.`

export interface StartedRun {
  readonly runId: string
  readonly channel: string
  /** Answers the checkpoint of `stepId` with "approve" (the run owner's client, on the node hosting the run). */
  readonly approve: (stepId: string) => Promise<void>
  readonly close: () => void
}

/** Starts a run of the simulated agent on `node` for `user`, with the typed Node client, as an app's backend would. */
export const startRun = async (node: TidingsNode, user: string, query: string): Promise<StartedRun> => {
  const client: Client<typeof AgentProtocol.latest> = makeClient(AgentProtocol, {
    url: node.ws,
    version: 2,
    token: await tokenFor(user),
    commandTimeoutMs: 15_000
  })
  try {
    const { runId, channel } = await client.command("start", { query, mode: "auto" })
    return {
      runId,
      channel,
      approve: async (stepId) => {
        const { resumed } = await client.command("feedback", {
          runId,
          target: { kind: "step", stepId },
          answer: "approve"
        })
        if (!resumed) throw new Error(`run ${runId}: the checkpoint of ${stepId} did not resume it`)
      },
      close: () => client.close()
    }
  } catch (error) {
    client.close()
    throw error
  }
}

/** The channel's events as SSE messages, read by Node from its first event on `node` (never restarted). */
export const referenceStream = async (node: TidingsNode, channel: string): Promise<Stream> => {
  const token = await tokenFor("reference-reader")
  const stream = await Effect.runPromise(
    openStream(node.port, `/v1/channels/${encodeURIComponent(channel)}/events?fromStart=1`, {
      authorization: `Bearer ${token}`
    })
  )
  if (stream.status !== 200) throw new Error(`reference stream: HTTP ${stream.status}: ${stream.body()}`)
  return stream
}

/** Waits until `check` holds, failing with `what` and `detail()` after `timeoutMs`. */
export const waitFor = async (what: string, check: () => boolean, timeoutMs: number, detail = () => "") => {
  if (!(await until(check, timeoutMs))) throw new Error(`not within ${timeoutMs} ms: ${what}\n${detail()}`)
}

/** The offset of an SSE id `<epoch>:<offset>`. */
export const offsetOf = (id: string | undefined): number => Number(id?.slice(id.lastIndexOf(":") + 1))

export const isCompletion = (message: Message) => message.event === "completion"

/**
 * A channel's messages up to and including the run's completion. Other events may follow on a run's channel
 * (`tidings serve` announces who watches a run as `user_activity`), at times a page and a reference read differ.
 */
export const throughCompletion = (messages: ReadonlyArray<Message>): Array<Message> => {
  const end = messages.findIndex(isCompletion)
  return end < 0 ? [...messages] : messages.slice(0, end + 1)
}

/** Publishes one event on `channel` over HTTP (`POST /v1/channels/:channel/events`, the API key) on `node`. */
export const publishOverHttp = async (node: TidingsNode, channel: string, event: string, data: unknown) => {
  const response = await fetch(`${node.http}/v1/channels/${encodeURIComponent(channel)}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ event, data }),
    signal: AbortSignal.timeout(10_000)
  })
  const body = (await response.json()) as { positions?: Array<{ epoch: string; offset: number }> }
  if (response.status !== 200 || body.positions?.length !== 1) {
    throw new Error(`publish on ${channel}: HTTP ${response.status} ${JSON.stringify(body)}`)
  }
  return body.positions[0]!
}

// ---- a static server -------------------------------------------------------------------------------------------

export interface StaticServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly close: () => Promise<void>
}

/** Serves `files` (path → content type and body) on 127.0.0.1; anything else is 404. */
export const serveStatic = (
  files: Record<string, { readonly type: string; readonly body: string | Uint8Array }>
): Promise<StaticServer> =>
  new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      const file = files[new URL(req.url ?? "/", "http://localhost").pathname]
      if (file === undefined) return void res.writeHead(404).end()
      res.writeHead(200, { "content-type": file.type, "cache-control": "no-store" }).end(file.body)
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((done) => {
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })
