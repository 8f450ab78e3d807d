/**
 * Opening a scenario's clients and what that shows: connection setup rate (for tidings including auth: a JWT
 * verified at every upgrade, until `welcome`; subscribing is timed apart, since the baselines have nothing to
 * subscribe to; an SSE reader's setup is its whole request, token and channel included, until the 200), the CPU it
 * took, and server memory per idle connection (RSS after a full
 * GC with every client connected and subscribed, minus RSS after a full GC with only the first few connected,
 * divided by the difference in clients; both RSS figures without the young generation's pages, see memory.ts).
 */
import type { ScenarioResult } from "../results.ts"
import type { Rig } from "../rig.ts"
import { clientKindOf, type Spec } from "./spec.ts"

/** One line about setup for the log. */
export const describeSetup = (result: ScenarioResult): string => {
  const s = result.setup!
  const pct = (n: number | undefined) => (n === undefined ? "?" : `${Math.round(n)}%`)
  return (
    `${s.opened} clients; connected at ${s.perSec}/s (cpu server ${pct(s.cpu.server)} loadgen ${pct(s.cpu.loadgen)} ` +
    `other ${pct(s.cpu.other)})${s.subscribePerSec !== undefined ? `, subscribed at ${s.subscribePerSec}/s` : ""}; ` +
    `idle ${result.idle!.perConnectionKiB} KiB per connection (RSS without the young generation; with it ` +
    `${result.idle!.rssPerConnectionKiB} KiB)`
  )
}

/** Clients opened before the measurement (see openClients): a tenth, at most 1,000. */
export const warmClientsOf = (clients: number): number =>
  clients >= 100 ? Math.min(1000, Math.floor(clients / 10)) : 0

export const openClients = async (
  rig: Rig,
  spec: Spec,
  result: ScenarioResult,
  channel: "fanout" | "personal" | "none"
): Promise<boolean> => {
  const kind = clientKindOf(spec)
  const open = (from: number, clients: number) =>
    rig.loadgen.open({
      kind,
      // SSE readers GET the channel's events URL on the server's HTTP port; the others upgrade to WebSocket
      url: kind === "sse" ? rig.httpUrl : rig.url,
      from,
      clients,
      channel,
      concurrency: spec.connectConcurrency,
      timeoutMs: 30_000
    })
  // A first tenth of the clients (at most 1,000) takes the one-time costs out of the per-connection figures: code
  // the optimizing compilers emit while connections pour in (at 50 first clients, code space still grew by ~110
  // bytes per later connection for tidings and ~50 for ws over the next 2,500, and by ~5 over the 2,500 after) and
  // pools sized on first use. Setup rate and memory are measured on the rest.
  const first = warmClientsOf(spec.clients)
  const warm = first > 0 ? await open(0, first) : { opened: 0, failed: 0, errors: {} }
  await new Promise((resolve) => setTimeout(resolve, 200))
  const before = await rig.gcRss()
  const endCpu = rig.cpu()
  const setup = await open(first, spec.clients - first)
  const cpu = endCpu()
  const opened = warm.opened + setup.opened
  result.setup = {
    opened,
    failed: spec.clients - opened,
    ms: Math.round(setup.ms),
    perSec: Math.round(setup.perSec),
    ...(setup.subscribePerSec !== undefined ? { subscribePerSec: Math.round(setup.subscribePerSec) } : {}),
    cpu
  }
  if (opened < spec.clients) {
    result.notes.push(`connect errors: ${JSON.stringify({ ...warm.errors, ...setup.errors })}`)
    if (opened === 0) {
      result.status = "failed"
      result.reason = `no client could connect: ${JSON.stringify(setup.errors)}`
      return false
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  const after = await rig.gcRss()
  const tenths = (n: number) => Math.round(n * 10) / 10
  const mib = (bytes: number) => tenths(bytes / 1048576)
  const perConnectionKiB = (bytes: number) => tenths(bytes / Math.max(1, setup.opened) / 1024)
  result.idle = {
    rssBeforeMiB: mib(before.rss),
    rssAfterMiB: mib(after.rss),
    youngBeforeMiB: mib(before.young),
    youngAfterMiB: mib(after.young),
    perConnectionKiB: perConnectionKiB(after.rss - after.young - (before.rss - before.young)),
    rssPerConnectionKiB: perConnectionKiB(after.rss - before.rss)
  }
  return true
}
