/**
 * Test configuration: every suite under test/, in forked workers, with generous timeouts for socket tests.
 *
 * Two files at a time at least: vitest's default (cores − 1) is one at a time on a 2-core machine, and most suites
 * spend their time waiting on sockets and private brokers, so two side by side take ~0.6 of the serial time there.
 */
import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

// Node 20 (still found on some machines, including this project's CI image) lacks Map.groupBy and
// Object.groupBy, which vitest 5's reporter calls when printing failures. Node 22+ has both.
const groupBy = <K, T>(items: Iterable<T>, key: (item: T, index: number) => K): Map<K, Array<T>> => {
  const map = new Map<K, Array<T>>()
  let i = 0
  for (const item of items) {
    const k = key(item, i++)
    const group = map.get(k)
    if (group) group.push(item)
    else map.set(k, [item])
  }
  return map
}
const maps = Map as unknown as { groupBy?: typeof groupBy }
maps.groupBy ??= groupBy
const objects = Object as unknown as { groupBy?: unknown }
objects.groupBy ??= <T>(items: Iterable<T>, key: (item: T, index: number) => PropertyKey) =>
  Object.fromEntries(groupBy(items, key))

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: Math.max(2, availableParallelism() - 1)
  }
})
