/**
 * Runs `bench/run.ts` (the orchestrator, `npm run bench`) as a child process for the bench's own tests, and
 * hands back its exit code and everything it printed. Bounded by the bench's own `--deadline-s`, which the
 * caller passes.
 */
import { spawn } from "node:child_process"
import { join } from "node:path"

export const runBench = (args: ReadonlyArray<string>): Promise<{ code: number | null; output: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], {
      cwd: join(import.meta.dirname, "../../.."),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (c: Buffer) => (output += c.toString()))
    child.stderr.on("data", (c: Buffer) => (output += c.toString()))
    child.on("exit", (code) => resolve({ code, output }))
  })
