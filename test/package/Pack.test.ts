/**
 * The package as users get it: `npm pack`, install the tarball into a fresh project, type-check a typed server
 * and client against its `.d.ts` files (including lines that must not compile), then run the compiled program.
 * Installs from the local npm cache where it can.
 */
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, describe, expect, it } from "vitest"

const root = resolve(import.meta.dirname, "../..")
const work = mkdtempSync(join(tmpdir(), "tidings-pack-"))
const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  execFileSync(command, [...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 240_000 })

afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("npm package", () => {
  it("installs from its tarball, type-checks a typed server and client, and runs", () => {
    run("npm", ["pack", "--pack-destination", work, "--silent"], root)
    const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"))
    expect(tarball).toBeDefined()
    const project = join(work, "app")
    run("mkdir", ["-p", project], work)
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", "--silent", join(work, tarball!), "@types/node@22"],
      project
    )
    for (const file of ["sample.ts", "typeErrors.ts"])
      copyFileSync(join(import.meta.dirname, "fixture", file), join(project, file))
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          types: ["node"],
          lib: ["ES2022", "DOM"],
          outDir: "out"
        },
        include: ["*.ts"]
      })
    )
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
    try {
      run(process.execPath, [tsc, "-p", "."], project)
    } catch (error) {
      throw new Error(`the packed package does not type-check:\n${(error as { stdout?: string }).stdout ?? error}`)
    }
    const output = run(process.execPath, [join(project, "out", "sample.js")], project)
    expect(JSON.parse(output.trim())).toEqual({ offset: 1, text: "hello from the tarball", versions: [1, 2] })
  }, 300_000)
})
