/**
 * Prometheus metrics whose values live elsewhere (Stats, RunsStatus) and are read at scrape time: a gauge, a
 * counter (a monotonic value reported as a counter), and a counter with one label over a map of counts.
 */
import { Counter, Gauge, type Registry } from "prom-client"

export const gauge = (registry: Registry, name: string, help: string, read: () => number): void => {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read())
    }
  })
}

export const counter = (registry: Registry, name: string, help: string, read: () => number): void => {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset()
      this.inc(read())
    }
  })
}

export const labelled = (
  registry: Registry,
  name: string,
  help: string,
  label: string,
  read: () => ReadonlyMap<string | number, number>
): void => {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset()
      for (const [key, value] of read()) this.inc({ [label]: String(key) }, value)
    }
  })
}
