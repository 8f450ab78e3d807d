/** Which balancing a node of several processes uses: kernel (SO_REUSEPORT) where Node has it, else the primary's. */
import { describe, expect, it } from "vitest"
import { kernelBalancingAvailable, onPort, resolve } from "../../../src/server/processes/Balancing.ts"

describe("Balancing", () => {
  it("knows which Node versions have reusePort (22.12+, 23.1+), and on which platforms it balances", () => {
    expect(["20.20.2", "22.11.0", "23.0.0"].map((v) => kernelBalancingAvailable(v))).toEqual([false, false, false])
    expect(["22.12.0", "23.1.0", "24.22.3", "26.0.0"].map((v) => kernelBalancingAvailable(v))).toEqual([
      true,
      true,
      true,
      true
    ])
    expect(["linux", "freebsd", "darwin", "win32"].map((p) => kernelBalancingAvailable("24.22.3", p))).toEqual([
      true,
      true,
      false,
      false
    ])
  })

  it("defaults to kernel where available, primary elsewhere, and keeps an explicit choice", () => {
    expect(resolve(undefined, "24.22.3", "linux")).toBe("kernel")
    expect(resolve(undefined, "24.22.3", "darwin")).toBe("primary")
    expect(resolve(undefined, "20.20.2", "linux")).toBe("primary")
    expect(resolve("primary", "24.22.3", "linux")).toBe("primary")
    expect(resolve("kernel", "24.22.3", "linux")).toBe("kernel")
  })

  it("shares the primary's socket on port 0, where each process would bind a port of its own", () => {
    expect(onPort("kernel", 0)).toBe("primary")
    expect(onPort("primary", 0)).toBe("primary")
    expect(onPort("kernel", 4000)).toBe("kernel")
    expect(onPort("primary", 4000)).toBe("primary")
  })

  it("refuses kernel balancing on a Node without reusePort, naming the fix", () => {
    expect(() => resolve("kernel", "20.20.2", "linux")).toThrow(/needs SO_REUSEPORT support in Node.*use "primary"/)
    expect(() => resolve("kernel", "24.22.3", "darwin")).toThrow(/on darwin: use "primary"/)
  })
})
