/** The hardware line of a report: cores, CPU model (/proc/cpuinfo), memory, Node version, OS, open-file limit. */
import { readFileSync } from "node:fs"
import { cpus, release, totalmem, type } from "node:os"
import { fdLimit } from "./procstat.ts"
import type { Machine } from "./results.ts"

const cpuModel = (): string => {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((l) => l.startsWith("model name"))
    if (line) return line.split(":")[1]!.trim()
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? "unknown"
}

export const machine = (): Machine => {
  const limit = fdLimit()
  return {
    cpus: cpus().length,
    model: cpuModel(),
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    os: `${type()} ${release()}`,
    fdLimit: limit ? `${limit.soft} soft / ${limit.hard} hard` : "unknown"
  }
}

export const describeMachine = (m: Machine): string =>
  `${m.cpus} cores (${m.model}), ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.os}, open files ${m.fdLimit}`
