/**
 * The `tidings` command as a newcomer meets it: `serve` in development prints a token and lets anonymous
 * loopback clients in; production refuses to start without auth (exit 1, one clear line); `--help` lists the
 * options; an unknown command exits 2.
 */
import { spawn, spawnSync } from "node:child_process"
import { resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { connectRaw } from "../server/support/rawClient.ts"
import { freePort } from "../support/freePort.ts"

const bin = resolve(import.meta.dirname, "../../src/bin/tidings.ts")
const cleanEnv = () => {
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (key.startsWith("TIDINGS_")) delete env[key]
  return env
}
const runSync = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, ["--import", "tsx", bin, ...args], { env, encoding: "utf8", timeout: 30_000 })

describe("tidings CLI", () => {
  it("production refuses to start without a secret or JWKS, with one clear line", () => {
    const result = runSync(["serve", "--port", "0"], { ...cleanEnv(), TIDINGS_ENV: "production" })
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(/^tidings: production needs TIDINGS_JWT_SECRET or TIDINGS_JWKS_URL/m)
  })

  it("--help lists the options; an unknown command exits 2", () => {
    const help = runSync(["serve", "--help"], cleanEnv())
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("--transport T")
    expect(help.stdout).toContain("--processes N")
    expect(runSync(["bogus"], cleanEnv()).status).toBe(2)
  })

  it("development mode prints a token and admits anonymous loopback clients", async () => {
    const port = await freePort()
    const child = spawn(process.execPath, ["--import", "tsx", bin, "serve", "--port", String(port)], {
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
    try {
      const deadline = Date.now() + 20_000
      while (!stdout.includes("Development token")) {
        if (Date.now() > deadline) throw new Error(`no banner: ${stdout}`)
        await new Promise((r) => setTimeout(r, 50))
      }
      const client = await connectRaw(`ws://127.0.0.1:${port}/ws`, { protocols: ["tidings.agent.v2.json"] })
      client.send({ type: "authenticate" })
      expect(await client.next((f) => f.type === "welcome")).toMatchObject({
        user: null,
        protocol: "agent",
        version: 2
      })
      client.send({ type: "command", id: "1", name: "start", payload: { query: "hello", mode: "auto" } })
      expect(await client.next((f) => f.type === "reply")).toMatchObject({ ok: true })
      client.close()
    } finally {
      child.kill("SIGTERM")
    }
  }, 60_000)
})
