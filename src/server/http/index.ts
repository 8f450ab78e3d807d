/**
 * The plain HTTP side: health, readiness (from state kept in the background), Prometheus metrics, publishing over
 * HTTP, channels as Server-Sent Events, presence queries, and the status endpoint of a worker. Uses auth/.
 */
export * as HttpRoutes from "./HttpRoutes.ts"
export * as Metrics from "./Metrics.ts"
export * as Sse from "./Sse.ts"
export * as StatusServer from "./StatusServer.ts"
export * as TransportHealth from "./TransportHealth.ts"
