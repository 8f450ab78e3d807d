/**
 * Choosing the transport by configuration, through the real CLI (`tidings serve`, src/bin/tidings.ts): with
 * `--transport redis --redis-url <url>` (and `--transport nats --nats-url <url>`) two `tidings serve` processes
 * share a private broker — an event published over HTTP on one reaches a typed client of the other — and with
 * an unreachable URL the process fails at start with exit code 1 and one line on stderr naming the URL.
 */
import { afterAll, describe, expect, it } from "vitest"
import * as Client from "../../src/client/node.ts"
import { AgentProtocol } from "../../src/protocol/agent/index.ts"
import { sign } from "../server/support/testServer.ts"
import { freePort } from "../support/freePort.ts"
import { type Broker, brokerBinary, brokerKinds, startBroker } from "./support/brokers.ts"
import { CLI_SCRIPT, cleanEnv, killAll, runToExit, spawnNode } from "./support/cluster.ts"

const SECRET = "test-secret-0123456789-abcdefghij"
const API_KEY = "serve-test-api-key"

for (const kind of brokerKinds) {
  const binary = brokerBinary(kind, `tidings serve --transport ${kind}`)
  if (binary === undefined) {
    describe.skip(`tidings serve --transport ${kind} (${kind}-server not installed)`, () => {
      it("skipped", () => {})
    })
    continue
  }

  describe(`tidings serve --transport ${kind}`, () => {
    let broker: Broker | undefined
    let client: ReturnType<typeof Client.make<typeof AgentProtocol, 2>> | undefined

    afterAll(async () => {
      client?.close()
      await killAll()
      await broker?.close()
    })

    it(`starts two nodes on --${kind}-url and serves one channel log through them`, async () => {
      broker = await startBroker(kind, binary)
      // only the names unique to this test come from the environment; the transport and URL are flags
      const names = Object.fromEntries(
        Object.entries(broker.env("serve")).filter(([key]) => key !== "TIDINGS_TRANSPORT" && !key.endsWith("_URL"))
      )
      const args = (port: number) => [
        "serve",
        "--transport",
        kind,
        `--${kind}-url`,
        broker!.url,
        "--port",
        String(port),
        "--jwt-secret",
        SECRET,
        "--api-key",
        API_KEY
      ]
      const started = performance.now()
      const [a, b] = await Promise.all(
        ["a", "b"].map(async (name) => {
          const port = await freePort()
          return spawnNode({
            name: `tidings serve ${name}`,
            script: CLI_SCRIPT,
            args: args(port),
            port,
            env: cleanEnv(names)
          })
        })
      )
      const readyMs = performance.now() - started
      expect(a!.output()).toContain(`transport: ${kind}`)
      const readyz = await fetch(`${a!.http}/readyz`).then((r) => r.json())
      expect(readyz).toEqual({ ready: true, transport: "ok", draining: false, runs: "ok" })

      client = Client.make(AgentProtocol, {
        url: b!.url,
        version: 2,
        token: () => sign({ sub: "watcher", channels: ["run:*"] })
      })
      const phases: Array<string> = []
      client.on("status", (data) => {
        phases.push(data.phase)
      })
      await client.subscribe("run:serve").ready()
      const response = await fetch(`${a!.http}/v1/channels/run:serve/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ event: "status", data: { phase: "thinking" } })
      })
      expect(response.status).toBe(200)
      const deadline = Date.now() + 10_000
      while (phases.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect(phases).toEqual(["thinking"])
      console.log(
        `tidings serve --transport ${kind}: two nodes ready in ${Math.round(readyMs)} ms; node a → node b delivered`
      )
    }, 60_000)

    it(`fails at start with exit code 1 and one line naming an unreachable --${kind}-url`, async () => {
      // port 1: nothing listens there, and unlike a probed free port no other test can take it meanwhile
      const url = `${kind}://127.0.0.1:1`
      const result = await runToExit({
        name: "tidings serve (unreachable)",
        script: CLI_SCRIPT,
        args: ["serve", "--transport", kind, `--${kind}-url`, url, "--port", String(await freePort())],
        env: cleanEnv({}),
        timeoutMs: 30_000
      })
      const lines = result.stderr.trim().split("\n")
      console.log(
        `tidings serve --transport ${kind} with ${url}: exit ${result.code} after ${result.ms} ms: ${lines[0]}`
      )
      const output = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`
      expect(result.code, output).toBe(1)
      expect(lines, output).toHaveLength(1)
      expect(lines[0]).toContain(url)
      expect(lines[0]).toMatch(/^tidings: cannot reach (Redis|NATS) at /)
    }, 60_000)
  })
}
