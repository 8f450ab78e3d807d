/**
 * Prometheus metrics, rendered by prom-client from the plain counters in Stats.ts at scrape time (the hot path
 * never touches prom-client). Each server has its own registry, so several servers in one process (tests) do
 * not collide. Names are listed in docs/operations.md.
 */
import { Histogram, Registry } from "prom-client"
import type { BridgesShape } from "../../bridges/Bridges.ts"
import type { RunsStatusShape } from "../../runs/RunsStatus.ts"
import type { Stats } from "../Stats.ts"
import * as RunMetrics from "./RunMetrics.ts"
import * as Scraped from "./ScrapedMetrics.ts"

export interface MetricsSources {
  readonly stats: Stats
  /** Bytes waiting in every connection's outbound buffer, summed. */
  readonly outboundBytes: () => number
  readonly channels: () => number
  /** Runs in this process, when it has them. */
  readonly runs?: RunsStatusShape | undefined
  /** Bridges in this process, when it has them. */
  readonly bridges?: BridgesShape | undefined
}

/** Buckets for publish → socket-write latency, in seconds. */
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

export interface Metrics {
  readonly registry: Registry
  /** Observes one publish → socket-write latency, in milliseconds. */
  readonly observeDeliveryLatency: (ms: number) => void
  readonly render: () => Promise<string>
}

export const make = (sources: MetricsSources): Metrics => {
  const { stats } = sources
  const registry = new Registry()
  const gauge = (name: string, help: string, read: () => number) => Scraped.gauge(registry, name, help, read)
  // counters whose values live in Stats: read at scrape time, typed counter in the exposition
  const counter = (name: string, help: string, read: () => number) => Scraped.counter(registry, name, help, read)
  const labelled = (name: string, help: string, label: string, read: () => ReadonlyMap<string | number, number>) =>
    Scraped.labelled(registry, name, help, label, read)

  gauge("tidings_connections_open", "Open WebSocket connections", () => stats.connectionsOpen)
  gauge("tidings_channels_live", "Channels with a live transport listener on this node", sources.channels)
  gauge("tidings_outbound_buffer_bytes", "Bytes waiting in outbound buffers, all connections", sources.outboundBytes)
  counter("tidings_connections_opened_total", "Connections accepted", () => stats.connectionsOpened)
  labelled(
    "tidings_connections_closed_total",
    "Connections closed by the server, by close code",
    "code",
    () => stats.connectionsClosed
  )
  labelled(
    "tidings_upgrades_refused_total",
    "Upgrades refused before the handshake, by HTTP status",
    "status",
    () => stats.upgradesRefused
  )
  counter("tidings_frames_in_total", "Frames received", () => stats.framesIn)
  counter("tidings_bytes_in_total", "Bytes received", () => stats.bytesIn)
  counter("tidings_frames_out_total", "Frames sent", () => stats.framesOut)
  counter("tidings_bytes_out_total", "Bytes sent", () => stats.bytesOut)
  counter(
    "tidings_messages_out_total",
    "WebSocket messages sent (each carries one or more frames)",
    () => stats.messagesOut
  )
  counter("tidings_deliveries_total", "Events delivered to subscribers", () => stats.deliveries)
  gauge("tidings_sse_streams_open", "Open Server-Sent Events streams", () => stats.sseOpen)
  counter("tidings_sse_deliveries_total", "Events sent on Server-Sent Events streams", () => stats.sseDeliveries)
  counter("tidings_sse_slow_readers_total", "SSE streams cut off as slow readers", () => stats.sseSlowReaders)
  counter("tidings_replayed_total", "Events replayed on resume", () => stats.replayed)
  counter("tidings_published_total", "Events appended by this node", () => stats.published)
  counter("tidings_commands_total", "Commands dispatched to handlers", () => stats.commands)
  labelled("tidings_resets_total", "Resets sent, by reason", "reason", () => stats.resets)
  labelled("tidings_errors_total", "Error frames sent, by code", "code", () => stats.errors)
  counter("tidings_rate_limited_total", "Commands refused by the rate limit", () => stats.rateLimited)
  counter("tidings_slow_consumer_closes_total", "Connections closed as slow consumers", () => stats.slowConsumerCloses)
  const latency = new Histogram({
    name: "tidings_delivery_latency_seconds",
    help: "From publish (entry time) to the socket write that carried the event",
    buckets: latencyBuckets,
    registers: [registry]
  })

  if (sources.runs) RunMetrics.register(registry, sources.runs)
  sources.bridges?.registerMetrics(registry)

  return {
    registry,
    observeDeliveryLatency: (ms) => latency.observe(ms / 1000),
    render: () => registry.metrics()
  }
}
