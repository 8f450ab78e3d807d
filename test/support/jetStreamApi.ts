/**
 * JetStream API queries a test asks of a private nats-server cluster (natsCluster.ts, natsNetnsCluster.ts): each
 * request goes over a fresh connection to the first member that answers, closed after. `ready` waits until
 * JetStream answers; `leaderOf` names a stream's leader (undefined while there is none or nobody answers).
 */
import { connect } from "@nats-io/transport-node"

export interface JetStreamQueries {
  /** Resolves once JetStream answers `$JS.API.INFO` without an error. */
  readonly ready: (timeoutMs?: number) => Promise<void>
  readonly streamInfo: (stream: string) => Promise<unknown>
  /** The member leading the stream now, or undefined. */
  readonly leaderOf: (stream: string) => Promise<string | undefined>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Queries through `urls()`, tried in order: the members a request may go to now (running, reachable). */
export const jetStreamQueries = (clusterName: string, urls: () => ReadonlyArray<string>): JetStreamQueries => {
  const api = async (subject: string, timeoutMs: number): Promise<unknown> => {
    let lastError: unknown
    for (const url of urls()) {
      const nc = await connect({ servers: url, timeout: timeoutMs, reconnect: false }).catch((error) => {
        lastError = error
        return undefined
      })
      if (nc === undefined) continue
      try {
        return (await nc.request(subject, undefined, { timeout: timeoutMs })).json()
      } catch (error) {
        lastError = error
      } finally {
        await nc.close().catch(() => {})
      }
    }
    throw lastError ?? new Error(`no member of cluster ${clusterName} to ask`)
  }
  return {
    ready: async (timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs
      let last: unknown
      while (Date.now() < deadline) {
        try {
          const info = (await api("$JS.API.INFO", 1000)) as { error?: unknown }
          if (info.error === undefined) return
          last = info.error
        } catch (error) {
          last = error
        }
        await sleep(200)
      }
      throw new Error(`JetStream of cluster ${clusterName} not ready after ${timeoutMs} ms: ${String(last)}`)
    },
    streamInfo: (stream) => api(`$JS.API.STREAM.INFO.${stream}`, 2000),
    leaderOf: async (stream) => {
      try {
        const info = (await api(`$JS.API.STREAM.INFO.${stream}`, 1000)) as { cluster?: { leader?: string } }
        return info.cluster?.leader
      } catch {
        return undefined
      }
    }
  }
}
