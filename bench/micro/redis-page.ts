/**
 * Micro-benchmark of reading one replay page (1,000 entries of ~150 bytes) from a Redis stream three ways, on a
 * private redis-server: a bare XRANGE (ioredis parses the nested reply, as strings and as Buffers) and an XRANGE
 * inside a Lua script that concatenates the entries into one string (what the Redis transport's read script
 * does). Prints wall time and this process's CPU per ten pages, then Redis's own time per call (INFO
 * commandstats): where a page costs, in Redis or in Node.
 * Run: node --import tsx bench/micro/redis-page.ts [rounds, default 3]
 */
import { Redis } from "ioredis"
import { startRedisServer } from "../../test/support/redisServer.ts"

const rounds = Number(process.argv[2] ?? 3)
const server = await startRedisServer()
const redis = new Redis(server.url)
const entry = `1732412345678\n1732412345678\n1\n4\n90\ntick${JSON.stringify({ s: 1, i: 12345, t: 1732412345678.123, m: 1, p: "x".repeat(40) })}`
const fill = redis.pipeline()
for (let i = 1; i <= 10_000; i++) fill.xadd("log", `${i}-0`, entry, "")
await fill.exec()
const concatenated = await redis.script(
  "LOAD",
  `local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', 1000)
local run = {}
for i = 1, #entries do local f = entries[i][2]; run[2 * i - 1] = f[1]; run[2 * i] = f[2] end
return table.concat(run)`
)
await redis.config("RESETSTAT")

const tenPages = async (label: string, page: (from: string) => Promise<unknown>) => {
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (let k = 0; k < 10; k++) await page(`${k * 1000 + 1}-0`)
  const used = process.cpuUsage(cpu)
  console.log(
    `  ${label}: ${(performance.now() - started).toFixed(1)} ms, Node CPU ${((used.user + used.system) / 1000).toFixed(1)} ms`
  )
}

for (let round = 1; round <= rounds; round++) {
  console.log(`round ${round}: 10 pages of 1,000 entries`)
  await tenPages("XRANGE, strings  ", (from) => redis.xrange("log", from, "+", "COUNT", 1000))
  await tenPages("XRANGE, Buffers  ", (from) => redis.xrangeBuffer("log", from, "+", "COUNT", 1000))
  await tenPages("Lua concatenation", (from) => redis.evalsha(concatenated as string, 1, "log", from))
}
const stats = (await redis.info("commandstats"))
  .split("\n")
  .filter((line: string) => /cmdstat_(xrange|evalsha):/.test(line))
for (const line of stats) {
  const [name, fields] = line.trim().split(":")
  console.log(`inside Redis, ${name!.slice(8)}: ${/usec_per_call=([\d.]+)/.exec(fields!)?.[1]} µs per page`)
}
redis.disconnect()
await server.dispose()
