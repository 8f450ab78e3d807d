/**
 * The primary process of a node that runs several server processes behind one port (node:cluster): it forks
 * them, and either each of them listens on the port with SO_REUSEPORT and the kernel spreads connections over them
 * (`kernel` balancing), or the primary accepts every connection and passes it to the next process in turn
 * (`primary`, node:cluster's round-robin; Balancing.ts). It keeps a table of which processes are ready and tells every
 * process how many are (ProcessGroup.ts answers `/readyz` from that), sums the processes' metrics for whichever
 * process a scrape reached, restarts a process that exits on its own (RestartBackoff.ts), and on SIGTERM or
 * SIGINT asks every process to shut down gracefully and resolves once all have exited.
 *
 * It serves no traffic itself and knows nothing of tidings' protocol: each process is a full server of its own.
 */
import cluster, { type Worker } from "node:cluster"
import { AggregatorRegistry, Counter, Gauge, Registry } from "prom-client"
import * as Balancing from "./Balancing.ts"
import { COUNT_ENV, INDEX_ENV, isToSupervisor, type MetricsJson, type ToProcess } from "./Messages.ts"
import * as RestartBackoff from "./RestartBackoff.ts"

/** How long a metrics collection waits for each process; a process that has not answered by then is left out. */
const COLLECT_TIMEOUT_MS = 2000

export interface SuperviseOptions {
  /** Server processes to run (at least 1). */
  readonly processes: number
  /** Environment of process `index`, added to the primary's own. */
  readonly env?: (index: number) => Record<string, string>
  readonly restart?: RestartBackoff.RestartBackoffOptions
  /** How the processes share the port (Balancing.ts); `kernel` where Node has SO_REUSEPORT, else `primary`. */
  readonly balancing?: Balancing.Balancing
  /** Where the supervisor's own lines go (a process exited, was restarted); `tidings: <line>` on stderr by default. */
  readonly log?: (line: string, level: "info" | "warning") => void
}

export interface Supervisor {
  /** Resolves with the exit code once every process has exited: 0 after a shutdown, 1 after a failed start. */
  readonly exited: Promise<number>
  /** Shuts every process down gracefully (SIGTERM), as SIGTERM or SIGINT to the primary does (a second one kills them). */
  readonly stop: () => void
}

interface Slot {
  readonly index: number
  worker: Worker | undefined
  /** The process has reported at least once: it listens, and answers metrics collections. */
  attached: boolean
  ready: boolean
  startedAt: number
  /** Exits in a row, each soon after its start (RestartBackoff.nextStreak). */
  streak: number
  restarts: number
  restartTimer: NodeJS.Timeout | undefined
}

const sendTo = (worker: Worker, message: ToProcess): void => {
  try {
    if (worker.isConnected()) worker.send(message)
  } catch {
    // it is exiting; its exit is handled on its own
  }
}

/** Starts the processes; call it in the cluster primary (`cluster.isPrimary`). */
export const supervise = (options: SuperviseOptions): Supervisor => {
  if (!cluster.isPrimary) throw new Error("Processes.supervise runs in the primary process (cluster.isPrimary)")
  const count = Math.max(1, Math.floor(options.processes))
  const balancing = Balancing.resolve(options.balancing)
  const log = options.log ?? ((line: string) => process.stderr.write(`tidings: ${line}\n`))
  const slots: Array<Slot> = Array.from({ length: count }, (_, index) => ({
    index,
    worker: undefined,
    attached: false,
    ready: false,
    startedAt: 0,
    streak: 0,
    restarts: 0,
    restartTimer: undefined
  }))
  let stopping = false
  /** Every process has been ready at once: from then on an exit is a crash to restart, not a failed start. */
  let up = false
  let exitCode = 0
  let lastReady = -1
  let resolveExited: (code: number) => void = () => {}
  const exited = new Promise<number>((resolve) => {
    resolveExited = resolve
  })

  const own = new Registry()
  new Gauge({ name: "tidings_processes", help: "Server processes this node runs", registers: [own] }).set(count)
  new Gauge({
    name: "tidings_processes_ready",
    help: "Server processes of this node that are ready",
    registers: [own],
    collect() {
      this.set(readyCount())
    }
  })
  new Gauge({
    name: "tidings_process_ready",
    help: "1 while the process is ready, 0 while it starts or drains; one series per running process",
    labelNames: ["process", "pid"],
    registers: [own],
    collect() {
      this.reset()
      for (const slot of slots) {
        const pid = slot.worker?.process.pid
        if (pid !== undefined) this.set({ process: String(slot.index), pid: String(pid) }, slot.ready ? 1 : 0)
      }
    }
  })
  new Counter({
    name: "tidings_process_restarts_total",
    help: "Server processes restarted after they exited on their own",
    labelNames: ["process"],
    registers: [own],
    collect() {
      this.reset()
      for (const slot of slots) this.inc({ process: String(slot.index) }, slot.restarts)
    }
  })

  const readyCount = () => slots.filter((s) => s.ready).length

  /** Tells every process how many are ready, when that changed (and a newly attached process in any case). */
  const announce = (also?: Worker) => {
    const ready = readyCount()
    const message: ToProcess = { tidings: "group", ready, expected: count }
    if (ready !== lastReady) {
      lastReady = ready
      for (const slot of slots) if (slot.attached && slot.worker) sendTo(slot.worker, message)
    } else if (also) sendTo(also, message)
    if (!up && ready === count) {
      up = true
      log(`all ${count} processes ready`, "info")
    }
  }

  let nextCollection = 0
  const collections = new Map<number, (metrics: MetricsJson) => void>()
  /** Every attached process's metrics and the supervisor's own, summed (AggregatorRegistry.aggregate). */
  const collect = (): Promise<string> =>
    new Promise((resolve) => {
      const id = nextCollection++
      const targets = slots.flatMap((s) => (s.attached && s.worker?.isConnected() ? [s.worker] : []))
      const parts: Array<MetricsJson> = []
      let waiting = targets.length
      let finished = false
      const finish = () => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        collections.delete(id)
        own
          .getMetricsAsJSON()
          .then((mine) => AggregatorRegistry.aggregate([...parts, mine]).metrics())
          .then(resolve, (error: unknown) => resolve(`# metrics could not be summed: ${String(error)}\n`))
      }
      const timer = setTimeout(finish, COLLECT_TIMEOUT_MS)
      collections.set(id, (metrics) => {
        parts.push(metrics)
        if (--waiting === 0) finish()
      })
      for (const worker of targets) sendTo(worker, { tidings: "collect", id })
      if (waiting === 0) finish()
    })

  const onMessage = (slot: Slot, worker: Worker, message: unknown) => {
    if (!isToSupervisor(message) || slot.worker !== worker) return
    switch (message.tidings) {
      case "ready": {
        const attaching = !slot.attached
        slot.attached = true
        slot.ready = message.ready
        announce(attaching ? worker : undefined)
        return
      }
      case "metrics-request":
        void collect().then((text) => sendTo(worker, { tidings: "metrics-reply", id: message.id, text }))
        return
      case "collected":
        collections.get(message.id)?.(message.metrics)
    }
  }

  const finishIfDone = () => {
    if (!stopping || slots.some((s) => s.worker !== undefined)) return
    process.off("SIGTERM", onSignal)
    process.off("SIGINT", onSignal)
    resolveExited(exitCode)
  }

  const onExit = (slot: Slot, pid: number | undefined, code: number | null, signal: string | null) => {
    slot.worker = undefined
    slot.attached = false
    slot.ready = false
    announce()
    if (stopping) return finishIfDone()
    const how = signal ?? `exit code ${code}`
    if (!up) {
      log(`process ${slot.index} (pid ${pid}) exited before the node was ready (${how}); stopping`, "warning")
      exitCode = 1
      return stop()
    }
    slot.streak = RestartBackoff.nextStreak(slot.streak, performance.now() - slot.startedAt, options.restart)
    const wait = RestartBackoff.delayMs(slot.streak, options.restart)
    log(`process ${slot.index} (pid ${pid}) exited (${how}); restarting it in ${wait} ms`, "warning")
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined
      slot.restarts++
      start(slot)
    }, wait)
  }

  const start = (slot: Slot) => {
    const worker = cluster.fork({
      ...options.env?.(slot.index),
      [INDEX_ENV]: String(slot.index),
      [COUNT_ENV]: String(count),
      [Balancing.BALANCING_ENV]: balancing
    })
    slot.worker = worker
    slot.startedAt = performance.now()
    worker.on("message", (message: unknown) => onMessage(slot, worker, message))
    worker.once("exit", (code, signal) => onExit(slot, worker.process.pid, code, signal))
  }

  function stop(): void {
    if (stopping) return
    stopping = true
    for (const slot of slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer)
      slot.restartTimer = undefined
      slot.worker?.process.kill("SIGTERM")
    }
    finishIfDone()
  }

  // the first signal drains; a second one, as for a single process, does not wait: it kills every process
  const onSignal = () => {
    if (!stopping) return stop()
    for (const slot of slots) slot.worker?.process.kill("SIGKILL")
  }
  process.on("SIGTERM", onSignal)
  process.on("SIGINT", onSignal)
  // with primary balancing it hands each accepted connection to the next process in turn (the default, except on
  // Windows); with kernel balancing it accepts nothing
  cluster.schedulingPolicy = cluster.SCHED_RR
  for (const slot of slots) start(slot)
  return { exited, stop }
}
