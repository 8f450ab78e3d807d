/**
 * The command line and the profiles: turns `npm run bench -- …` into the list of scenario runs (Specs).
 * Without --scenario it runs a profile: `quick` (the default: about five minutes, every scenario once at modest
 * sizes, brokers when available) or `full` (finer ladders, longer steps, every transport, 10,000 connections).
 * Flags override the profile's knobs for every spec.
 */
import { cpus } from "node:os"
import { parseArgs } from "node:util"
import type { TransportName } from "./brokers.ts"
import { MAX_SOCKETS_PER_WORKER } from "./loadgen/LoadGen.ts"
import type { ServerKind } from "./results.ts"
import { type ScenarioName, type Spec, scenarioNames } from "./scenarios/spec.ts"

export const usage = `Usage: npm run bench [-- options]

Without --scenario, runs a profile (--profile quick, the default, or full) and prints a table.
Every run writes results.json and report.html under bench/results/<time>-<label>/ (or --out DIR).

  --scenario LIST        ${scenarioNames.join(", ")}
  --server LIST          tidings, ws, socketio (baselines run fan-out and hold only; sse-fanout is tidings only)
  --transport LIST       memory, redis, nats (redis/nats need the binaries; private servers on free ports);
                         nats-jsparser: NATS read by nats.js's own parser, to compare with nats in one run
  --clients N            clients (fan-out and sse-fanout 1000, unicast 1000, command 100, storm 1000, replay 1,
                         hold 10000; runs: runs in flight while commands are measured, 100)
  --workers N            load-generator processes (default: 1 per 5,000 clients up to one per core, and
                         always enough that none holds more than 15,000 sockets: the open-file limit)
  --server-processes N   tidings as N processes behind one port (node:cluster, as tidings serve --processes):
                         needs --transport redis or nats; CPU and memory are summed over all of them (1)
  --rates LIST           run exactly these paced rates instead of searching
  --start-rate R         first ladder rate (events or commands per second)
  --factor F             ladder growth per step (quick 1.6 fan-out, 1.8 others; full 1.25)
  --max-rate R           ladder ceiling
  --refine N             bisection steps between the best pass and the next failure (quick 1, full 3)
  --retries N            re-runs of a failing rate before it counts as failed (quick 0, full 1)
  --stop-after N         stop climbing after N failed rates in a row (3)
  --quiet-wait-ms MS     before a step, wait up to MS for other processes to stop using the CPU (quick 5000)
  --max-runs N           most steps per ladder, retries included (quick 13, full 40)
  --step-ms MS           length of a paced step (quick 1500, full 5000), of which
  --warmup-ms MS         the first part is not measured (quick 300, full 1000)
  --drain-ms MS          how long a step may take to deliver everything after publishing ends (3000)
  --p99-ms MS            latency limit of a passing step (50)
  --payload BYTES        event data size (100)
  --unpaced-ms MS        length of the unpaced fan-out run (0 skips it)
  --missed M             storm/replay: events missed while away (storm 1000, replay 10000)
  --live-rate R          storm: live events per second during the storm (100)
  --channels LIST        publish: channel counts (1,64)
  --in-flight N          publish: appends in flight (256)
  --duration-ms MS       publish/http/hold: how long
  --rate R               hold: steady fan-out events per second (5)
  --connections N        http: autocannon connections (50)
  --connect-concurrency N  connections opened at once while setting up (256)
  --ack-ms MS            tidings clients ack about MS (±20% per client) after an event and after 1,000 events,
                         like the real client (1000; 0 never acks)
  --repeat K             run every scenario K times
  --cpu-prof             write a V8 CPU profile of every server under test and list its hottest functions
  --cpu-prof-loadgen     also write the load generators' CPU profiles (under profiles-loadgen/)
  --pin S:L | auto       pin the server to CPUs S and the load generators to CPUs L (taskset), e.g. 0:1
  --backlog N            the tidings server listens with accept backlog N (default 4096, as Server.ts)
  --out DIR              results directory
  --deadline-s S         hard stop for the whole run (quick 900, otherwise 3600)
`

export interface Plan {
  readonly specs: ReadonlyArray<Spec>
  readonly label: string
  readonly cpuProf: boolean
  readonly cpuProfLoadgen: boolean
  /** tidings server accept backlog (--backlog), or undefined for Server.ts's default. */
  readonly backlog: number | undefined
  /** taskset CPU lists for server and load generators (--pin), or undefined. */
  readonly pin: { readonly server: string; readonly loadgen: string } | undefined
  readonly out: string | undefined
  readonly deadlineMs: number
}

/** `--pin S:L` (taskset CPU lists, e.g. 0:1) or `--pin auto` (first half of the cores for the server, rest for the load generators). */
const pinOf = (value: string | undefined): Plan["pin"] => {
  if (value === undefined || value === "none") return undefined
  if (value === "auto") {
    const n = cpus().length
    if (n < 2) return undefined
    const half = Math.floor(n / 2)
    return { server: half === 1 ? "0" : `0-${half - 1}`, loadgen: half + 1 === n ? String(half) : `${half}-${n - 1}` }
  }
  const [server, loadgen] = value.split(":")
  if (!server || !loadgen) throw new Error("--pin wants SERVER_CPUS:LOADGEN_CPUS (e.g. 0:1), auto or none")
  return { server, loadgen }
}

const list = (value: string | undefined): Array<string> | undefined =>
  value
    ?.split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)

const numbers = (value: string | undefined): Array<number> | undefined => list(value)?.map(Number)

const defaultClients: Record<ScenarioName, number> = {
  fanout: 1000,
  "sse-fanout": 1000,
  unicast: 1000,
  command: 100,
  storm: 1000,
  replay: 1,
  publish: 0,
  http: 0,
  hold: 10_000,
  runs: 100
}

/**
 * Load-generator processes for `clients`: one per 5,000 up to one per core, and never fewer than keep every
 * process under MAX_SOCKETS_PER_WORKER sockets (the per-process open-file limit); `asked` (--workers) may not go
 * below that either.
 */
export const workersFor = (clients: number, asked: number | undefined): number => {
  const least = Math.max(1, Math.ceil(clients / MAX_SOCKETS_PER_WORKER))
  if (asked !== undefined && asked < least)
    throw new Error(
      `--workers ${asked} would put ${Math.ceil(clients / asked)} sockets in one process; ${clients} clients need at least ${least}`
    )
  return asked ?? Math.max(least, Math.min(Math.max(1, cpus().length), Math.ceil(clients / 5000)))
}

const defaultStart: Record<ScenarioName, number> = {
  fanout: 20,
  "sse-fanout": 20,
  unicast: 4000,
  command: 2000,
  storm: 0,
  replay: 0,
  publish: 0,
  http: 0,
  hold: 0,
  runs: 0
}

export const parsePlan = (argv: ReadonlyArray<string>): Plan | "help" => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: "boolean", short: "h" },
      profile: { type: "string" },
      scenario: { type: "string" },
      server: { type: "string" },
      servers: { type: "string" },
      transport: { type: "string" },
      clients: { type: "string" },
      workers: { type: "string" },
      "server-processes": { type: "string" },
      rates: { type: "string" },
      "start-rate": { type: "string" },
      factor: { type: "string" },
      "max-rate": { type: "string" },
      refine: { type: "string" },
      retries: { type: "string" },
      "stop-after": { type: "string" },
      "quiet-wait-ms": { type: "string" },
      "max-runs": { type: "string" },
      "step-ms": { type: "string" },
      "warmup-ms": { type: "string" },
      "drain-ms": { type: "string" },
      "p99-ms": { type: "string" },
      payload: { type: "string" },
      "unpaced-ms": { type: "string" },
      missed: { type: "string" },
      "live-rate": { type: "string" },
      channels: { type: "string" },
      "in-flight": { type: "string" },
      "duration-ms": { type: "string" },
      rate: { type: "string" },
      connections: { type: "string" },
      "connect-concurrency": { type: "string" },
      "ack-ms": { type: "string" },
      repeat: { type: "string" },
      "cpu-prof": { type: "boolean" },
      "cpu-prof-loadgen": { type: "boolean" },
      pin: { type: "string" },
      backlog: { type: "string" },
      out: { type: "string" },
      "deadline-s": { type: "string" }
    }
  })
  if (values.help) return "help"
  const profile = values.profile ?? "quick"
  if (profile !== "quick" && profile !== "full") throw new Error(`unknown profile ${profile} (quick or full)`)
  const full = profile === "full"
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v))
  const serverProcesses = Math.max(1, Math.floor(num(values["server-processes"]) ?? 1))

  const base = (scenario: ScenarioName, server: ServerKind, transport: TransportName, clients?: number): Spec => {
    const n = num(values.clients) ?? clients ?? defaultClients[scenario]
    const fan = scenario === "fanout" || scenario === "sse-fanout"
    return {
      scenario,
      server,
      transport,
      clients: n,
      workers: workersFor(n, num(values.workers)),
      serverProcesses: server === "tidings" ? serverProcesses : 1,
      step: {
        durationMs: num(values["step-ms"]) ?? (full ? 5000 : 1500),
        warmupMs: num(values["warmup-ms"]) ?? (full ? 1000 : 300),
        drainMs: num(values["drain-ms"]) ?? 3000,
        payloadBytes: num(values.payload) ?? 100,
        p99LimitMs: num(values["p99-ms"]) ?? 50
      },
      ladder: {
        start: num(values["start-rate"]) ?? defaultStart[scenario],
        factor: num(values.factor) ?? (full ? 1.25 : fan ? 1.6 : 1.8),
        max: num(values["max-rate"]) ?? 1_000_000,
        maxSteps: full ? 30 : 14,
        refine: num(values.refine) ?? (full ? 3 : 1),
        retries: num(values.retries) ?? (full ? 1 : 0),
        stopAfter: num(values["stop-after"]) ?? 3,
        quietWaitMs: num(values["quiet-wait-ms"]) ?? (full ? 60_000 : 5000),
        disturbedRetries: full ? 3 : 1,
        maxRuns: num(values["max-runs"]) ?? (full ? 40 : 13),
        rates: numbers(values.rates)
      },
      unpacedMs: num(values["unpaced-ms"]) ?? (fan ? (full ? 5000 : 1500) : 0),
      missed: num(values.missed) ?? (scenario === "replay" ? 10_000 : 1000),
      liveRate: num(values["live-rate"]) ?? (scenario === "storm" ? 100 : 0),
      channels: numbers(values.channels) ?? [1, 64],
      inFlight: num(values["in-flight"]) ?? 256,
      durationMs: num(values["duration-ms"]) ?? (scenario === "hold" ? (full ? 10_000 : 2000) : full ? 5000 : 1500),
      rate: num(values.rate) ?? 5,
      connections: num(values.connections) ?? 50,
      connectConcurrency: num(values["connect-concurrency"]) ?? 256,
      ackMs: num(values["ack-ms"]) ?? 1000
    }
  }

  let specs: Array<Spec> = []
  if (values.scenario) {
    const scenarios = list(values.scenario)!
    for (const s of scenarios) if (!scenarioNames.includes(s as ScenarioName)) throw new Error(`unknown scenario ${s}`)
    const transports = list(values.transport) as Array<TransportName> | undefined
    const servers = list(values.server ?? values.servers) as Array<ServerKind> | undefined
    for (const scenario of scenarios as Array<ScenarioName>) {
      const broadcast = scenario === "fanout" || scenario === "hold"
      const kinds = servers ?? (broadcast ? ["tidings", "ws", "socketio"] : ["tidings"])
      for (const server of kinds) {
        if (server !== "tidings" && !broadcast) continue
        // a baseline has no transport: run it once per scenario
        // runs cross processes: they need a shared transport, Redis unless told otherwise
        const chosen = transports ?? (scenario === "runs" ? ["redis" as const] : ["memory" as const])
        for (const transport of server === "tidings" ? chosen : (["memory"] as const)) {
          specs.push(base(scenario, server, transport))
        }
      }
    }
  } else {
    const brokers: Array<TransportName> = ["memory", "redis", "nats"]
    specs = [
      base("fanout", "tidings", "memory"),
      // the same channel read as Server-Sent Events (the same server, publisher and rates)
      base("sse-fanout", "tidings", "memory"),
      base("fanout", "ws", "memory"),
      base("fanout", "socketio", "memory"),
      base("fanout", "tidings", "redis"),
      base("fanout", "tidings", "nats"),
      ...(full ? brokers : (["memory"] as const)).map((t) => base("unicast", "tidings", t)),
      ...(full ? brokers : (["memory"] as const)).map((t) => base("command", "tidings", t)),
      ...(full ? brokers : (["memory"] as const)).map((t) => base("storm", "tidings", t)),
      ...brokers.map((t) => base("replay", "tidings", t)),
      ...(full ? brokers.map((t) => base("replay", "tidings", t, 10)) : []),
      ...brokers.map((t) => base("publish", "tidings", t)),
      base("http", "tidings", "memory"),
      base("runs", "tidings", "redis"),
      // memory per idle connection and setup rate need many connections to rise above RSS noise: at 5,000 bare ws
      // read 2.2 to 3.2 KiB over nine runs, at 10,000 2.8 to 3.2 over thirteen (docs/performance.md, memory)
      ...(["tidings", "ws", "socketio"] as const).map((s) => base("hold", s, "memory", 10_000))
    ]
  }
  for (const s of specs) {
    if (s.serverProcesses > 1 && s.transport === "memory")
      throw new Error(
        `--server-processes ${s.serverProcesses} needs --transport redis or nats: on the memory transport each process is a node of its own`
      )
  }
  const repeat = Math.max(1, num(values.repeat) ?? 1)
  if (repeat > 1) specs = specs.flatMap((s) => Array.from({ length: repeat }, () => s))
  return {
    specs,
    label: values.scenario ? list(values.scenario)!.join("+") : profile,
    cpuProf: values["cpu-prof"] === true,
    cpuProfLoadgen: values["cpu-prof-loadgen"] === true,
    pin: pinOf(values.pin),
    backlog: num(values.backlog),
    out: values.out,
    deadlineMs: (num(values["deadline-s"]) ?? (values.scenario ? 3600 : profile === "quick" ? 900 : 3600)) * 1000
  }
}
