/** Which balancing a node of several processes uses: kernel (SO_REUSEPORT) where Node has it, else the primary's. */
import { describe, expect, it } from "vitest"
import { kernelBalancingAvailable, resolve } from "../../../src/server/processes/Balancing.ts"

describe("Balancing", () => {
  it("knows which Node versions have reusePort (22.12+, 23.1+)", () => {
    expect(["20.20.2", "22.11.0", "23.0.0"].map((v) => kernelBalancingAvailable(v))).toEqual([false, false, false])
    expect(["22.12.0", "23.1.0", "24.22.3", "26.0.0"].map((v) => kernelBalancingAvailable(v))).toEqual([
      true,
      true,
      true,
      true
    ])
  })

  it("defaults to kernel where available, primary elsewhere, and keeps an explicit choice", () => {
    expect(resolve(undefined, "24.22.3")).toBe("kernel")
    expect(resolve(undefined, "20.20.2")).toBe("primary")
    expect(resolve("primary", "24.22.3")).toBe("primary")
    expect(resolve("kernel", "24.22.3")).toBe("kernel")
  })

  it("refuses kernel balancing on a Node without reusePort, naming the fix", () => {
    expect(() => resolve("kernel", "20.20.2")).toThrow(
      /needs SO_REUSEPORT support in Node \(22\.12 or later\).*use "primary"/
    )
  })
})
