/**
 * OpenTelemetry traces, off by default: `layerOtlp` exports spans over OTLP/HTTP (JSON) with effect's own exporter,
 * and `Spans` records the server's — a connection (from its welcome to its close), a command (a child of its
 * connection; a run it starts or answers continues the trace on the worker, because Effect Cluster carries the
 * span in its messages), a publish, and each node's fan-out of an entry to its subscribers. With tracing off the
 * server makes no span at all (a null `Spans`).
 */
import { Context, Exit, Layer, Option, type Tracer } from "effect"
import { FetchHttpClient } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"

export interface OtlpOptions {
  /** The collector's base URL (`http://host:4318`); spans go to `<url>/v1/traces`. */
  readonly url: string
  readonly serviceName: string
  /** How often spans are sent (default 1 s). */
  readonly exportIntervalMs?: number
}

/** The OTLP/HTTP tracer for everything built under it. */
export const layerOtlp = (options: OtlpOptions): Layer.Layer<never> =>
  OtlpTracer.layer({
    url: `${options.url.replace(/\/+$/, "")}/v1/traces`,
    resource: { serviceName: options.serviceName },
    exportInterval: options.exportIntervalMs ?? 1000
  }).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(FetchHttpClient.layer))

const nowNanos = (): bigint => BigInt(Date.now()) * 1_000_000n

/** Spans the server records outside Effects (connections, fan-out), with the current tracer. */
export class Spans {
  constructor(private readonly tracer: Tracer.Tracer) {}

  /** A span started now; the caller ends it with `end`. */
  start(name: string, kind: Tracer.SpanKind, attributes: Record<string, unknown>): Tracer.Span {
    const span = this.tracer.span({
      name,
      parent: Option.none(),
      annotations: Context.empty(),
      links: [],
      startTime: nowNanos(),
      kind,
      root: true,
      sampled: true
    })
    for (const key in attributes) span.attribute(key, attributes[key])
    return span
  }

  end(span: Tracer.Span, attributes: Record<string, unknown> = {}): void {
    for (const key in attributes) span.attribute(key, attributes[key])
    span.end(nowNanos(), Exit.void)
  }
}
