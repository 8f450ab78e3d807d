/**
 * The issue's targets, judged against one run's results: each verdict says what was measured, whether the
 * target was met, and by how much it was missed (or that the run did not include what it needs). Ratios are
 * taken within the run (baselines measured side by side). Repeated runs of a scenario are summarized by their
 * median.
 */
import type { ScenarioResult, Verdict } from "./results.ts"
import { holdTargets } from "./scenarios/holdSummary.ts"

const median = (values: ReadonlyArray<number>): number | undefined => {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const ok = (r: ScenarioResult) => r.status === "ok"

const pick = (
  results: ReadonlyArray<ScenarioResult>,
  match: (r: ScenarioResult) => boolean,
  value: (r: ScenarioResult) => number | undefined
): number | undefined =>
  median(
    results
      .filter((r) => ok(r) && match(r))
      .map(value)
      .filter((v): v is number => v !== undefined && Number.isFinite(v))
  )

const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
const ratio = (n: number) => `${n.toFixed(2)}×`

/** At least `target`: met, or missed by a percentage. */
const atLeast = (
  name: string,
  measured: number | undefined,
  target: number,
  show: (n: number) => string,
  missing: string
): Verdict =>
  measured === undefined
    ? { target: name, measured: "—", met: undefined, detail: missing }
    : {
        target: name,
        measured: show(measured),
        met: measured >= target,
        detail:
          measured >= target
            ? `met (${ratio(measured / target)} the target)`
            : `missed by ${Math.round((1 - measured / target) * 100)}% (${show(measured)} vs ${show(target)})`
      }

/** At most `target`. */
const atMost = (
  name: string,
  measured: number | undefined,
  target: number,
  show: (n: number) => string,
  missing: string
): Verdict =>
  measured === undefined
    ? { target: name, measured: "—", met: undefined, detail: missing }
    : {
        target: name,
        measured: show(measured),
        met: measured <= target,
        detail:
          measured <= target
            ? "met"
            : `missed: ${show(measured)} is ${Math.round((measured / target - 1) * 100)}% over ${show(target)}`
      }

const fanoutBest = (results: ReadonlyArray<ScenarioResult>, server: string, transport = "memory") =>
  pick(
    results,
    (r) => r.scenario === "fanout" && r.server === server && (server !== "tidings" || r.transport === transport),
    (r) => r.best?.deliveriesPerSec ?? 0
  )

export const judge = (results: ReadonlyArray<ScenarioResult>): Array<Verdict> => {
  const verdicts: Array<Verdict> = []
  const tidings = fanoutBest(results, "tidings")
  const ws = fanoutBest(results, "ws")
  const sio = fanoutBest(results, "socketio")
  const clientsOf = results.find((r) => r.scenario === "fanout" && r.server === "tidings" && ok(r))?.clients
  const need = "needs the fan-out scenario with tidings and the baselines in one run"
  verdicts.push(
    atLeast(
      `fan-out (memory${clientsOf ? `, ${clientsOf} clients` : ""}) at p99 ≤ 50 ms ≥ 3× Socket.IO`,
      tidings !== undefined && sio ? tidings / sio : undefined,
      3,
      ratio,
      need
    ),
    atLeast(
      `fan-out (memory${clientsOf ? `, ${clientsOf} clients` : ""}) at p99 ≤ 50 ms ≥ 1.5× bare ws`,
      tidings !== undefined && ws ? tidings / ws : undefined,
      1.5,
      ratio,
      need
    )
  )

  const held = results.filter((r) => r.scenario === "hold" && r.server === "tidings" && ok(r) && r.clients >= 10_000)
  verdicts.push(
    held.length === 0
      ? {
          target: "10,000 concurrent connections with steady fan-out, no errors",
          measured: "—",
          met: undefined,
          detail: "not run (opt-in: npm run bench -- --scenario hold --server tidings --clients 10000)"
        }
      : {
          target: "10,000 concurrent connections with steady fan-out, no errors",
          measured: `${held[0]!.headline?.value ?? 0} held`,
          met: held.every((r) => r.best !== undefined && (r.headline?.value ?? 0) >= r.clients),
          detail: held.every((r) => r.best !== undefined)
            ? "met"
            : `missed: ${held.map((r) => r.notes.join("; ")).join(" | ")}`
        }
  )

  // issue 18: one 2-core node holds 100,000 (several server processes, --server-processes)
  const huge = results.filter((r) => r.scenario === "hold" && r.server === "tidings" && ok(r) && r.clients >= 100_000)
  const hugeStep = (r: ScenarioResult) => r.steps?.[0]
  const notRun =
    "not run (opt-in: npm run bench -- --scenario hold --server tidings --transport redis --server-processes 7 --clients 100000)"
  verdicts.push(
    huge.length === 0
      ? {
          target: "100,000 connections held, every event delivered",
          measured: "—",
          met: undefined,
          detail: notRun
        }
      : {
          target: "100,000 connections held, every event delivered",
          measured: huge
            .map(
              (r) =>
                `${fmt(r.headline?.value ?? 0)} held, ${fmt(hugeStep(r)?.received ?? 0)} of ${fmt(hugeStep(r)?.expected ?? 0)} delivered`
            )
            .join("; "),
          met: huge.every((r) => r.best !== undefined),
          detail: huge.every((r) => r.best !== undefined) ? "met" : `missed: ${huge.map((r) => r.notes[0]).join(" | ")}`
        },
    atMost(
      "delivery p99 ≤ 500 ms at 100,000 connections (1 event/s to all)",
      pick(
        huge,
        () => true,
        (r) => hugeStep(r)?.latency.p99
      ),
      holdTargets.p99Ms,
      (n) => `${fmt(n)} ms`,
      notRun
    ),
    atMost(
      "server memory per idle connection ≤ 2.5 KiB at 100,000",
      pick(
        huge,
        () => true,
        (r) => r.idle?.perConnectionKiB
      ),
      holdTargets.idleKiB,
      (n) => `${n.toFixed(1)} KiB`,
      notRun
    ),
    atLeast(
      "connection setup with a JWT ≥ 10,000/s over the processes",
      pick(
        huge,
        () => true,
        (r) => r.setup?.perSec
      ),
      holdTargets.setupPerSec,
      (n) => `${fmt(n)}/s`,
      notRun
    )
  )

  // the run with the most connections measures memory and setup best (RSS noise is a few MiB); WebSocket
  // connections only (SSE readers are judged against them below)
  const most = (server: string) =>
    Math.max(
      0,
      ...results
        .filter((r) => r.server === server && r.scenario !== "sse-fanout" && ok(r) && r.idle !== undefined)
        .map((r) => r.clients)
    )
  const largest = (server: string) => (r: ScenarioResult) =>
    r.server === server &&
    r.scenario !== "sse-fanout" &&
    r.transport === "memory" &&
    r.idle !== undefined &&
    r.clients >= 500 &&
    r.clients === most(server)
  const idle = pick(results, largest("tidings"), (r) => r.idle?.perConnectionKiB)
  const idleWs = pick(results, largest("ws"), (r) => r.idle?.perConnectionKiB)
  verdicts.push(
    atMost(
      "server memory per idle connection ≤ 12 KiB",
      idle,
      12,
      (n) => `${n.toFixed(1)} KiB`,
      "needs fan-out or hold with ≥ 500 clients"
    ),
    atMost(
      "server memory per idle connection ≤ 1.2× bare ws",
      idle !== undefined && idleWs ? idle / idleWs : undefined,
      1.2,
      ratio,
      "needs the ws baseline in the same run"
    )
  )

  const setup = pick(results, largest("tidings"), (r) => r.setup?.perSec)
  verdicts.push(
    atLeast(
      "connection setup ≥ 3,000/s including auth",
      setup,
      3000,
      (n) => `${fmt(n)}/s`,
      "needs ≥ 500 tidings clients"
    )
  )

  const resumeOf = (transport: string) =>
    pick(
      results,
      (r) =>
        r.scenario === "replay" && r.transport === transport && r.clients === 1 && (r.recovery?.missed ?? 0) >= 10_000,
      (r) => r.recovery?.fullRecoveryMs
    )
  verdicts.push(
    atMost(
      "resume after missing 10,000 events ≤ 100 ms (memory)",
      resumeOf("memory"),
      100,
      (n) => `${n.toFixed(1)} ms`,
      "needs replay on memory"
    ),
    atMost(
      "resume after missing 10,000 events ≤ 250 ms (Redis)",
      resumeOf("redis"),
      250,
      (n) => `${n.toFixed(1)} ms`,
      "needs replay on redis (redis-server)"
    )
  )
  const replayOf = (transport: string) =>
    pick(
      results,
      (r) => r.scenario === "replay" && r.transport === transport,
      (r) => r.recovery?.replayPerSec
    )
  verdicts.push(
    atLeast(
      "replay ≥ 250k entries/s (Redis)",
      replayOf("redis"),
      250_000,
      (n) => `${fmt(n)}/s`,
      "needs replay on redis"
    ),
    atLeast("replay ≥ 150k entries/s (NATS)", replayOf("nats"), 150_000, (n) => `${fmt(n)}/s`, "needs replay on nats")
  )

  const redisFanout = fanoutBest(results, "tidings", "redis")
  verdicts.push(
    atLeast(
      "Redis fan-out ≥ 0.7× memory (same scenario)",
      redisFanout !== undefined && tidings ? redisFanout / tidings : undefined,
      0.7,
      ratio,
      "needs fan-out on memory and redis"
    )
  )
  const pairs = ssePairs(results)
  if (pairs.length === 0) {
    verdicts.push({
      target: "SSE fan-out at p99 ≤ 50 ms ≥ 0.7× WebSocket fan-out (same clients)",
      measured: "—",
      met: undefined,
      detail: "needs sse-fanout and fanout with tidings, same transport and clients, in one run"
    })
  }
  for (const { transport, clients, sse, ws, limit } of pairs) {
    const s = pick(results, sse, (r) => r.best?.deliveriesPerSec ?? 0)
    const w = pick(results, ws, (r) => r.best?.deliveriesPerSec ?? 0)
    verdicts.push(
      atLeast(
        `SSE fan-out (${transport}, ${clients} readers), ${limit}, ≥ 0.7× WebSocket fan-out`,
        s !== undefined && w ? s / w : undefined,
        0.7,
        ratio,
        "no WebSocket fan-out passed a step"
      )
    )
  }

  const appendsOf = (transport: string) =>
    pick(
      results,
      (r) => r.scenario === "publish" && r.transport === transport,
      (r) => r.headline?.value
    )
  verdicts.push(
    atLeast(
      "publish path ≥ 50k appends/s (Redis)",
      appendsOf("redis"),
      50_000,
      (n) => `${fmt(n)}/s`,
      "needs publish on redis"
    ),
    atLeast(
      "publish path ≥ 20k appends/s (NATS)",
      appendsOf("nats"),
      20_000,
      (n) => `${fmt(n)}/s`,
      "needs publish on nats"
    )
  )

  const runsRate = (key: string) =>
    pick(
      results,
      (r) => r.scenario === "runs",
      (r) => r.rates?.[key]
    )
  verdicts.push(
    atLeast(
      "runs ≥ 100 started/s (PostgreSQL)",
      runsRate("runsStartedPerSec"),
      100,
      (n) => `${fmt(n)}/s`,
      "needs runs"
    ),
    atMost(
      "run command round trip p99 ≤ 20 ms with 100 runs in flight",
      runsRate("commandRoundTripP99Ms"),
      20,
      (n) => `${n.toFixed(1)} ms`,
      "needs runs"
    ),
    atMost(
      "a killed worker's runs publish again ≤ 10 s",
      runsRate("killToNextEventMaxMs"),
      10_000,
      (n) => `${(n / 1000).toFixed(1)} s`,
      "needs runs"
    )
  )

  for (const r of results.filter((x) => (x.scenario === "storm" || x.scenario === "replay") && ok(x) && x.recovery)) {
    const rec = r.recovery!
    const clean = rec.lost === 0 && rec.duplicated === 0 && rec.failed === 0 && rec.notRecovered === 0
    verdicts.push({
      target: `${r.scenario} (${r.transport}, ${r.clients} clients, ${rec.missed} missed): lost = duplicated = 0`,
      measured: `lost ${rec.lost}, duplicated ${rec.duplicated}`,
      met: clean,
      detail: clean ? "met" : `NOT MET: failed ${rec.failed}, not recovered ${rec.notRecovered}, resets ${rec.resets}`
    })
  }
  return verdicts
}

/**
 * The transports and client counts with both an SSE fan-out and a tidings WebSocket fan-out in the run, with
 * matchers for each side and the headline's label (it names the run's p99 limit).
 */
const ssePairs = (results: ReadonlyArray<ScenarioResult>) => {
  const keys = new Set(
    results.filter((r) => r.scenario === "sse-fanout" && ok(r)).map((r) => `${r.transport}/${r.clients}`)
  )
  return [...keys].flatMap((key) => {
    const [transport, n] = key.split("/") as [string, string]
    const clients = Number(n)
    const of = (scenario: string) => (r: ScenarioResult) =>
      r.scenario === scenario && r.server === "tidings" && r.transport === transport && r.clients === clients
    const limit = results.find((r) => ok(r) && of("sse-fanout")(r))?.headline?.label ?? "deliveries/s at p99 ≤ 50 ms"
    return results.some((r) => ok(r) && of("fanout")(r))
      ? [{ transport, clients, sse: of("sse-fanout"), ws: of("fanout"), limit }]
      : []
  })
}

/** Side-by-side ratios of the fan-out against the baselines. */
export const compare = (results: ReadonlyArray<ScenarioResult>): Array<{ what: string; value: string }> => {
  const out: Array<{ what: string; value: string }> = []
  const rows: Array<[string, (r: ScenarioResult) => number | undefined, string]> = [
    ["fan-out deliveries/s at p99 ≤ 50 ms (highest passing rate)", (r) => r.best?.deliveriesPerSec ?? 0, "fanout"],
    [
      "fan-out deliveries/s at p99 ≤ 50 ms (every rate up to it passed)",
      (r) => r.sustained?.deliveriesPerSec ?? 0,
      "fanout"
    ],
    ["fan-out deliveries/s unpaced", (r) => r.unpaced?.deliveriesPerSec, "fanout"],
    ["memory per idle connection (KiB)", (r) => r.idle?.perConnectionKiB, "hold"],
    ["connection setup /s (tidings: with JWT auth)", (r) => r.setup?.perSec, "hold"]
  ]
  for (const [what, f, scenario] of rows) {
    const get = (server: string, f: (r: ScenarioResult) => number | undefined) =>
      pick(
        results,
        (r) => r.scenario === scenario && r.server === server && (server !== "tidings" || r.transport === "memory"),
        f
      )
    const t = get("tidings", f)
    const w = get("ws", f)
    const s = get("socketio", f)
    if (t === undefined && w === undefined && s === undefined) continue
    const show = (n: number | undefined) => (n === undefined ? "—" : n < 100 ? n.toFixed(1) : fmt(n))
    const r = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? ratio(a / b) : "—")
    out.push({
      what,
      value: `tidings ${show(t)} · ws ${show(w)} · Socket.IO ${show(s)} → tidings/ws ${r(t, w)}, tidings/Socket.IO ${r(t, s)}`
    })
  }
  // SSE readers beside WebSocket subscribers of the same server, channel and rates
  for (const { transport, clients, sse, ws, limit } of ssePairs(results)) {
    const measures: Array<[string, (r: ScenarioResult) => number | undefined]> = [
      [limit, (r) => r.best?.deliveriesPerSec ?? 0],
      ["unpaced", (r) => r.unpaced?.deliveriesPerSec],
      ["idle KiB/conn", (r) => r.idle?.perConnectionKiB],
      ["setup/s", (r) => r.setup?.perSec]
    ]
    const parts = measures.flatMap(([what, f]) => {
      const s = pick(results, sse, f)
      const w = pick(results, ws, f)
      if (s === undefined && w === undefined) return []
      const show = (n: number | undefined) => (n === undefined ? "—" : n < 100 ? n.toFixed(1) : fmt(n))
      return [
        `${what} SSE ${show(s)} · WebSocket ${show(w)} → SSE/WebSocket ${s !== undefined && w ? ratio(s / w) : "—"}`
      ]
    })
    out.push({ what: `SSE vs WebSocket fan-out (tidings/${transport}, ${clients} clients)`, value: parts.join("; ") })
  }
  return out
}

/**
 * Results measured while other processes on the machine used more than 30% of a core (at the reported point, at
 * setup or during recovery): their numbers, and the verdicts built on them, say more about the machine than
 * about the server.
 */
export const disturbed = (results: ReadonlyArray<ScenarioResult>): Array<string> =>
  results
    .filter((r) => {
      const others = [r.cpu?.other, r.setup?.cpu.other, r.recovery?.cpu.other, r.unpaced?.cpu.other]
      return ok(r) && others.some((o) => o !== undefined && o > 30)
    })
    .map((r) => r.id)
