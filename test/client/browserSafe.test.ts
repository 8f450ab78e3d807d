/**
 * The browser entry stays browser-safe: bundling src/client/index.ts for the browser pulls in no Node
 * built-in and not `ws` (only node.ts may import them).
 */
import { build } from "esbuild"
import { describe, expect, it } from "vitest"

describe("tidings/client (browser entry)", () => {
  it("bundles for the browser without Node built-ins or ws", async () => {
    const result = await build({
      entryPoints: ["src/client/index.ts"],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent"
    })
    const inputs = Object.keys(result.metafile.inputs)
    expect(inputs).toContain("src/client/Client.ts")
    expect(inputs.filter((path) => path.startsWith("node:") || /node_modules\/ws\//.test(path))).toEqual([])
    expect(inputs).not.toContain("src/client/node.ts")
  })
})
