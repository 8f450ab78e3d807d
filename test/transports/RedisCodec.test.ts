/** The Redis transport's run format (codec.ts), without Redis: runs of `header data` cut back into entries. */
import { describe, expect, it } from "vitest"
import { decodeRange, decodeRun, encodeHeader } from "../../src/transports/redis/codec.ts"
import type { Publication } from "../../src/transports/Transport.ts"

const run = (publications: ReadonlyArray<Publication>) =>
  publications.map((p) => encodeHeader(1_700_000_000_000, p) + p.data).join("")

describe("Redis run codec", () => {
  it("cuts a run into entries with consecutive offsets, whatever the event names and data hold", () => {
    const publications: Array<Publication> = [
      { event: "tick", data: '{"n":1}', version: 1, time: 10 },
      { event: "tick", data: '{"n":"a\\nb"}', version: 1, time: 11 },
      { event: "tock", data: "{}", version: 2, time: 12 },
      { event: "tick", data: '{"é":"ü"}', version: 2, time: 13 },
      { event: "ticks", data: "[]", version: 3, time: 14 },
      { event: "t", data: "", version: 3, time: 15 }
    ]
    const entries = decodeRun("room:1", "e1", 41, run(publications))
    expect(entries).toEqual(publications.map((p, i) => ({ ...p, channel: "room:1", epoch: "e1", offset: 41 + i })))
  })

  it("makes entries only for the wanted offsets of a longer run and counts all it holds", () => {
    const publications = Array.from({ length: 10 }, (_, i) => ({ event: "e", data: `{"i":${i}}`, version: 1, time: i }))
    const page = decodeRange("c", "e", 101, run(publications), 0, 104, 3)
    expect(page?.total).toBe(10)
    expect(page?.entries.map((e) => [e.offset, e.data])).toEqual([
      [104, '{"i":3}'],
      [105, '{"i":4}'],
      [106, '{"i":5}']
    ])
    expect(decodeRange("c", "e", 101, run(publications), 0, 109, 1000)?.entries.map((e) => e.offset)).toEqual([
      109, 110
    ])
    expect(decodeRange("c", "e", 101, run(publications), 0, 104, 0)?.entries).toEqual([])
  })

  it("refuses text that is not a run", () => {
    expect(decodeRun("c", "e", 1, "1\n2\n3\n")).toBeUndefined()
    expect(
      decodeRun("c", "e", 1, `${encodeHeader(1, { event: "tick", data: "{}", version: 1, time: 1 })}{`)
    ).toBeUndefined()
    expect(decodeRun("c", "e", 1, "")).toEqual([])
  })
})
