/**
 * Flush passes in slices (Outbound.ts SLICE_MS): a pass over many sockets hands the event loop back between
 * slices, every socket still gets its frames in order, and a socket that gets a frame between two slices of a
 * pass (after its own flush in that pass) is flushed again without waiting for anything else to happen.
 */
import { describe, expect, it } from "vitest"
import { Outbound } from "../../src/server/outbound/Outbound.ts"

const owner = { outboundOverflow: () => undefined, outboundWrite: () => undefined }

/** A socket whose send takes about `costMs` of CPU, so a pass over many of them outlasts a slice. */
const slowSocket = (sent: Array<string>, costMs: number, onSend?: () => void) => ({
  bufferedAmount: 0,
  readyState: 1,
  send: (data: unknown) => {
    const end = performance.now() + costMs
    while (performance.now() < end);
    sent.push(String(data))
    onSend?.()
  }
})

const until = async (check: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!check() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 5))
  return check()
}

describe("flush passes in slices", () => {
  it("delivers every frame in order, across slices, and a frame queued between slices without delay", async () => {
    const count = 300
    const sent = Array.from({ length: count }, () => [] as Array<string>)
    let turnsDuringPass = 0
    const outbounds: Array<Outbound> = []
    for (let i = 0; i < count; i++) {
      // the first socket, once written, queues another frame for itself at the next turn: between two slices
      const onSend =
        i === 0
          ? () => {
              if (sent[0]!.length === 1) setImmediate(() => outbounds[0]!.push("second"))
            }
          : undefined
      outbounds.push(
        new Outbound({ ...owner, socket: slowSocket(sent[i]!, 0.05, onSend) as never, maxOutboundBytes: 1 << 20 })
      )
    }
    for (const outbound of outbounds) outbound.push("first")
    // a timer that fires while some sockets still wait for their first frame ran between two slices of the pass
    const ticker = setInterval(() => {
      if (sent.some((s) => s.length === 0)) turnsDuringPass++
    }, 0)
    expect(await until(() => sent.every((s) => s.length >= 1), 2000)).toBe(true)
    clearInterval(ticker)
    // 300 sockets × 0.05 ms is about 15 ms of sends: the loop ran timers in the middle of the pass
    expect(turnsDuringPass).toBeGreaterThan(0)
    // the frame queued between slices is written promptly, though nothing else is pushed afterwards
    expect(await until(() => sent[0]!.length === 2, 200)).toBe(true)
    expect(sent[0]).toEqual(["first", "second"])
    for (const s of sent.slice(1)) expect(s).toEqual(["first"])
  })
})
