/**
 * Process accounting from /proc (Linux): CPU time and resident memory of any process by pid (node children,
 * redis-server, nats-server alike), and the open-file limit. On other systems every reading is undefined and
 * the report says "n/a". It owns no process lifecycle.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

const getconf = (name: string, fallback: number): number => {
  try {
    return Number(execFileSync("getconf", [name], { encoding: "utf8" }).trim()) || fallback
  } catch {
    return fallback
  }
}

const clockTicks = getconf("CLK_TCK", 100)
const pageSize = getconf("PAGESIZE", 4096)

/** CPU time (user + system) of a process in ms, or undefined when it cannot be read. */
export const cpuMs = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // the command name may contain spaces: fields start after the closing parenthesis
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks
  } catch {
    return undefined
  }
}

/** Resident set size of a process in bytes. */
export const rssBytes = (pid: number): number | undefined => {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * pageSize
  } catch {
    return undefined
  }
}

/** The open-file limit (soft and hard) of this process. */
export const fdLimit = (): { soft: number; hard: number } | undefined => {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))
    const [soft, hard] = (line ?? "").replace("Max open files", "").trim().split(/\s+/)
    const parse = (v: string | undefined) => (v === "unlimited" ? Number.POSITIVE_INFINITY : Number(v))
    return { soft: parse(soft), hard: parse(hard) }
  } catch {
    return undefined
  }
}

/** CPU time used by the whole machine (every core, every process) in ms, from the first line of /proc/stat. */
export const machineCpuMs = (): number | undefined => {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait
    const busy = fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]! + fields[7]!
    return (busy * 1000) / clockTicks
  } catch {
    return undefined
  }
}

/** Machine-wide pid key for the CpuMeter: CPU of every process together. */
export const MACHINE = -1

/**
 * CPU use of several processes over an interval, as a percentage of one core each; with MACHINE among the pids,
 * also the whole machine's (so the rest — other processes on a shared machine — can be told apart).
 */
export class CpuMeter {
  private start = new Map<number, number | undefined>()
  private startedAt = 0

  constructor(private readonly pids: () => ReadonlyArray<number>) {}

  private read(pid: number): number | undefined {
    return pid === MACHINE ? machineCpuMs() : cpuMs(pid)
  }

  begin(): void {
    this.startedAt = performance.now()
    this.start = new Map(this.pids().map((pid) => [pid, this.read(pid)]))
  }

  /** Percent of one core per pid since `begin`. */
  end(): Map<number, number | undefined> {
    const wall = performance.now() - this.startedAt
    const out = new Map<number, number | undefined>()
    for (const [pid, before] of this.start) {
      const after = this.read(pid)
      out.set(
        pid,
        before === undefined || after === undefined || wall <= 0 ? undefined : ((after - before) / wall) * 100
      )
    }
    return out
  }
}
