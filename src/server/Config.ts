/**
 * Server configuration from the environment (and, through the CLI, flags): role, port, host, auth, run storage,
 * limits, log level.
 * Development (the default) may run without a secret: it generates one and prints a development token.
 * Production (`TIDINGS_ENV=production`) refuses to start without `TIDINGS_JWT_SECRET` or `TIDINGS_JWKS_URL`
 * unless anonymous access is enabled on purpose.
 */
import { Config, Option, Schema } from "effect"
import { defaultLimits, defaultTiming, type Limits, type Timing } from "./Options.ts"

const optionalString = (name: string) => Config.option(Config.String(name))
const int = (name: string, fallback: number) => Config.Int(name).pipe(Config.withDefault(fallback))

export const ServeConfig = Config.all({
  env: Config.Literals(["development", "production"], "TIDINGS_ENV").pipe(Config.withDefault("development" as const)),
  role: Config.Literals(["gateway", "worker", "all"], "TIDINGS_ROLE").pipe(Config.withDefault("all" as const)),
  databaseUrl: Config.option(Config.Redacted("TIDINGS_DATABASE_URL")),
  runnerHost: Config.String("TIDINGS_RUNNER_HOST").pipe(Config.withDefault("127.0.0.1")),
  runnerPort: Config.schema(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })),
    "TIDINGS_RUNNER_PORT"
  ).pipe(Config.withDefault(34431)),
  runs: Config.all({
    startTimeoutMs: int("TIDINGS_RUNS_START_TIMEOUT_MS", 5000),
    shardLockExpirationMs: int("TIDINGS_RUNS_LOCK_EXPIRATION_MS", 6000),
    shardLockRefreshMs: int("TIDINGS_RUNS_LOCK_REFRESH_MS", 2000)
  }),
  agent: Config.all({
    beatMs: int("TIDINGS_AGENT_BEAT_MS", 250),
    steps: int("TIDINGS_AGENT_STEPS", 5)
  }),
  host: Config.String("TIDINGS_HOST").pipe(Config.withDefault("127.0.0.1")),
  // 0 picks a free port
  port: Config.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })), "TIDINGS_PORT").pipe(
    Config.withDefault(4000)
  ),
  path: Config.String("TIDINGS_PATH").pipe(Config.withDefault("/ws")),
  /** Server processes behind the port (`tidings serve --processes`, src/server/processes): 1 is one plain process. */
  processes: Config.schema(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 256 })), "TIDINGS_PROCESSES").pipe(
    Config.withDefault(1)
  ),
  /** How several processes share the port (src/server/processes/Balancing.ts); none: the default for this Node. */
  balancing: Config.option(Config.Literals(["kernel", "primary"], "TIDINGS_PROCESS_BALANCING")),
  backlog: Config.schema(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })), "TIDINGS_BACKLOG").pipe(
    Config.withDefault(4096)
  ),
  jwtSecret: optionalString("TIDINGS_JWT_SECRET"),
  jwksUrl: optionalString("TIDINGS_JWKS_URL"),
  issuer: optionalString("TIDINGS_JWT_ISSUER"),
  audience: optionalString("TIDINGS_JWT_AUDIENCE"),
  apiKey: optionalString("TIDINGS_API_KEY"),
  anonymousChannels: Config.option(Config.String("TIDINGS_ANONYMOUS_CHANNELS")),
  /** Channels with presence (`tidings serve`: viewers of a run announced as user_activity); "off" for none. */
  presence: Config.String("TIDINGS_PRESENCE").pipe(Config.withDefault("run:*")),
  /** Origins whose browser pages may use the HTTP routes (comma-separated, or *). */
  corsOrigins: optionalString("TIDINGS_CORS_ORIGINS"),
  /** A bridges configuration file (docs/bridges.md): its bridges run in this process. */
  bridges: optionalString("TIDINGS_BRIDGES"),
  logLevel: Config.LogLevel("TIDINGS_LOG_LEVEL").pipe(Config.withDefault("Info" as const)),
  /** An OTLP/HTTP collector (`http://host:4318`): traces are sent there; unset, none are made. */
  otlpUrl: optionalString("TIDINGS_OTLP_URL"),
  limits: Config.all({
    maxFrameBytes: int("TIDINGS_MAX_FRAME_BYTES", defaultLimits.maxFrameBytes),
    maxOutboundBytes: int("TIDINGS_MAX_OUTBOUND_BYTES", defaultLimits.maxOutboundBytes),
    maxSubscriptions: int("TIDINGS_MAX_SUBSCRIPTIONS", defaultLimits.maxSubscriptions),
    commandsPerSecond: int("TIDINGS_COMMANDS_PER_SECOND", defaultLimits.commandsPerSecond),
    maxConnections: int("TIDINGS_MAX_CONNECTIONS", defaultLimits.maxConnections),
    maxConnectionsPerUser: int("TIDINGS_MAX_CONNECTIONS_PER_USER", defaultLimits.maxConnectionsPerUser),
    connectionAttemptsPerSecondPerIp: int(
      "TIDINGS_CONNECTION_ATTEMPTS_PER_SECOND",
      defaultLimits.connectionAttemptsPerSecondPerIp
    )
  }),
  timing: Config.all({
    heartbeatMs: int("TIDINGS_HEARTBEAT_MS", defaultTiming.heartbeatMs),
    shutdownGraceMs: int("TIDINGS_SHUTDOWN_GRACE_MS", defaultTiming.shutdownGraceMs)
  })
})
export type ServeConfig = Config.Success<typeof ServeConfig>

export const limitsOf = (config: ServeConfig): Partial<Limits> => config.limits
export const timingOf = (config: ServeConfig): Partial<Timing> => config.timing
export const anonymousOf = (config: ServeConfig): ReadonlyArray<string> | undefined =>
  Option.match(config.anonymousChannels, {
    onNone: () => undefined,
    onSome: (s) =>
      s
        .split(",")
        .map((p) => p.trim())
        .filter((p) => p.length > 0)
  })
