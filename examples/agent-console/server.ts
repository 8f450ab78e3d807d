/**
 * The agent-console example's server, in one file: a tidings server speaking the built-in agent protocol with
 * the simulated agent as its command handlers, on the transport `TIDINGS_TRANSPORT` names (memory by default;
 * `redis` with `REDIS_URL`, `nats` with `NATS_URL`), sharing its HTTP port with the page it serves.
 *
 * Routes it adds beside tidings' own (`/ws`, `/healthz`, `/readyz`, `/metrics`, `/v1/channels/:channel/events`):
 * - `GET /`, `/app.js`, `/styles.css`: the page; app.js is bundled by esbuild in memory at start-up.
 * - `GET /token`: a short-lived JWT for the page's user (see `mintToken` for why, rather than anonymous access).
 * - `POST /api/runs`: a backend starts a run for a user — the query comes in over HTTP, the events go out over
 *   that user's socket; the page learns of the run from its personal channel `user:<id>`.
 *
 * Runs are durable runs (src/runs) of the simulated agent, in this process's memory: they end with the process.
 * On a graceful stop (Ctrl-C, SIGTERM) each run publishes a final "stopped" completion before the page is
 * disconnected; on a crash it just ends. With the memory transport the run's log goes with the process too, so a
 * page that reconnects after a restart is told its position is from a lost stream (a `reset`) and says the run
 * was lost. With Redis or NATS the log outlives every process: a page whose server restarts resumes from its
 * position with nothing missed or repeated, and a run started on another node keeps going meanwhile. Runs that
 * outlive their process too, and commands that reach a run from any node, are `tidings serve --role` with a
 * database (docs/runs.md); this example keeps to one process's runs.
 *
 * Configuration (environment): AGENT_CONSOLE_HOST (127.0.0.1), AGENT_CONSOLE_PORT (4100; 0 picks a free one),
 * AGENT_CONSOLE_BEAT_MS (500: the pace of the simulated agent), AGENT_CONSOLE_STEPS (5; the checkpoint is at
 * step 3), TIDINGS_JWT_SECRET (random per process when unset; nodes sharing a Redis need the same one),
 * TIDINGS_API_KEY (for POST /api/runs and tidings' publish endpoint; random and printed when unset), and the
 * transport variables above.
 */
import { randomBytes, timingSafeEqual } from "node:crypto"
import { readFileSync } from "node:fs"
import { createServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { basename, join } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Config, Context, Effect, Exit, FiberSet, Layer, Option, Redacted, Schema } from "effect"
import { build } from "esbuild"
import { SignJWT } from "jose"
import * as SimulatedAgent from "../../src/agent/SimulatedAgent.ts"
import { AgentProtocol, CommandsV2 } from "../../src/protocol/agent/index.ts"
import { RunClient } from "../../src/runs/index.ts"
import { type Publish, layer as serverLayer, TidingsServer } from "../../src/server/index.ts"
import { TransportKind, layerConfig as transportFromConfig } from "../../src/transports/index.ts"

const here = fileURLToPath(new URL(".", import.meta.url))

const ExampleConfig = Config.all({
  host: Config.String("AGENT_CONSOLE_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.Int("AGENT_CONSOLE_PORT").pipe(Config.withDefault(4100)),
  beatMs: Config.Int("AGENT_CONSOLE_BEAT_MS").pipe(Config.withDefault(500)),
  steps: Config.Int("AGENT_CONSOLE_STEPS").pipe(Config.withDefault(5)),
  jwtSecret: Config.option(Config.Redacted("TIDINGS_JWT_SECRET")),
  apiKey: Config.option(Config.Redacted("TIDINGS_API_KEY"))
})

/** The cookie that stands in for a login session: it names the page's user. */
const USER_COOKIE = "agent_console_user"
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/
/** Lifetime of a page token. The client fetches a new one for every connection and before this runs out. */
const TOKEN_TTL_SECONDS = 5 * 60
const MAX_BODY_BYTES = 64 * 1024
/** tidings' own HTTP routes on the shared port (src/server/http/HttpRoutes.ts); upgrades to `/ws` never get here. */
const tidingsOwns = (path: string) =>
  path === "/healthz" || path === "/readyz" || path === "/metrics" || path.startsWith("/v1/")

/** The body of `POST /api/runs`. */
const StartRunRequest = Schema.Struct({
  user: Schema.String.check(Schema.isPattern(USER_ID)),
  query: CommandsV2.Query,
  mode: Schema.optionalKey(CommandsV2.Mode)
})
const decodeStartRun = Schema.decodeUnknownResult(StartRunRequest)

// ---- auth ------------------------------------------------------------------------------------------------------

/**
 * Why the page gets a token from its own backend rather than anonymous access: runs belong to users. The token's
 * `sub` is the user, so a run started by the page (or for it by a backend) is theirs — only they may cancel or
 * answer it — and the personal channel `user:<sub>` reaches all of their tabs. Anonymous connections have no
 * user, hence none of that. The backend that owns the login session (here, a demo cookie) vouches for the user
 * by signing a JWT that the tidings server verifies. It lives five minutes and never sits in page storage: the
 * client calls its token getter for every connection and again when the server warns that the token expires.
 * `run:*` lets the user read run channels; run ids are unguessable, and an app whose runs are confidential would
 * name run channels per user and grant `run:{sub}:*` instead.
 */
const mintToken = (secret: Uint8Array, user: string): Promise<string> =>
  new SignJWT({ channels: ["run:*"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(`${TOKEN_TTL_SECONDS}s`)
    .sign(secret)

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

const cookie = (req: IncomingMessage, name: string): string | undefined => {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=")
    if (key === name) return value.join("=")
  }
  return undefined
}

// ---- HTTP helpers ----------------------------------------------------------------------------------------------

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body))
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`body exceeds ${MAX_BODY_BYTES} bytes`))
        req.destroy()
      } else chunks.push(chunk)
    })
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const listen = (http: HttpServer, host: string, port: number) =>
  Effect.acquireRelease(
    Effect.callback<number, Error>((resume) => {
      const onError = (error: Error) => resume(Effect.fail(error))
      http.once("error", onError)
      http.listen(port, host, () => {
        http.off("error", onError)
        resume(Effect.succeed((http.address() as AddressInfo).port))
      })
    }),
    () =>
      Effect.callback<void>((resume) => {
        http.close(() => resume(Effect.void))
        http.closeAllConnections()
      })
  )

/** The page's script, bundled for the browser from page/main.ts; tidings' client imports nothing from Node. */
const bundlePage = Effect.tryPromise({
  try: () =>
    build({
      entryPoints: [join(here, "page/main.ts")],
      outfile: join(here, "dist/app.js"),
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify: true,
      sourcemap: "linked",
      write: false,
      logLevel: "silent"
    }),
  catch: (error) => new Error(`cannot bundle the page: ${String(error)}`)
}).pipe(Effect.map((result) => new Map(result.outputFiles.map((file) => [`/${basename(file.path)}`, file.contents]))))

// ---- the program -----------------------------------------------------------------------------------------------

const program = Effect.gen(function* () {
  const config = yield* ExampleConfig
  const secretText = Option.match(config.jwtSecret, {
    onNone: () => randomBytes(32).toString("hex"),
    onSome: Redacted.value
  })
  const secret = new TextEncoder().encode(secretText)
  const apiKey = Option.match(config.apiKey, { onNone: () => randomBytes(16).toString("hex"), onSome: Redacted.value })

  const assets = yield* bundlePage
  const html = readFileSync(join(here, "page/index.html"))
  const css = readFileSync(join(here, "page/styles.css"))

  const http = createServer()
  // Until everything below is up, answer 503 rather than leave a request (say, the page's GET /token during a
  // restart) waiting for a handler that does not exist yet. The page's client retries.
  const starting = (_req: IncomingMessage, res: ServerResponse) =>
    json(res, 503, { error: "starting", message: "the server is starting; retry shortly" })
  http.on("request", starting)
  const port = yield* listen(http, config.host, config.port)

  // The server's shutdown stops the runs first (they end with this process), so their final events still
  // reach the pages following them; then tidings sends goaway and closes the sockets, then the HTTP server closes.
  const built = yield* Layer.build(
    serverLayer({
      protocol: AgentProtocol,
      handlers: SimulatedAgent.handlers,
      auth: { secret: secretText },
      server: http,
      apiKey
    }).pipe(
      Layer.provideMerge(SimulatedAgent.runs({ beatMs: config.beatMs, steps: config.steps })),
      Layer.provide(transportFromConfig())
    )
  )
  const server = Context.get(built, TidingsServer)
  const runs = Context.get(built, RunClient)

  const publish: Publish<AgentProtocol> = (channel, event, data, options) =>
    server.publishUnknown(channel, event, data, options)

  const runPromise = yield* FiberSet.makeRuntimePromise()

  /**
   * Starts a run for `user` and tells their pages on the personal channel, which they follow. When the
   * announcement cannot be published (the broker is down), the run has started all the same: the backend gets
   * its id and the failure is logged, rather than a retry starting a second run.
   */
  const startForUser = (user: string, input: typeof SimulatedAgent.Input.Type) =>
    runs.start(SimulatedAgent.run, { owner: user, input, maxActive: SimulatedAgent.MAX_RUNS_PER_USER }).pipe(
      Effect.tap(({ channel }) =>
        publish(`user:${user}`, "user_activity", { user: "backend", action: "run_started", target: channel }).pipe(
          Effect.catch((error) => Effect.logWarning(`could not announce ${channel} to ${user}: ${error.message}`))
        )
      ),
      Effect.result
    )

  const startRun = async (req: IncomingMessage, res: ServerResponse) => {
    const authorization = req.headers.authorization ?? ""
    if (!authorization.startsWith("Bearer ") || !sameSecret(authorization.slice(7), apiKey)) {
      return json(res, 401, { error: "unauthorized", message: "send Authorization: Bearer <TIDINGS_API_KEY>" })
    }
    let body: unknown
    try {
      body = JSON.parse(await readBody(req))
    } catch (error) {
      return json(res, 400, { error: "bad_body", message: `expected a JSON body: ${String(error)}` })
    }
    const request = decodeStartRun(body)
    if (request._tag === "Failure") return json(res, 400, { error: "bad_request", message: request.failure.message })
    const { user, query, mode } = request.success
    const started = await runPromise(startForUser(user, { query, mode: mode ?? "auto" }))
    if (started._tag === "Success") return json(res, 202, started.success)
    const error = started.failure
    if (error._tag === "RunLimitExceeded") {
      return json(res, 429, { error: "run_limit", message: error.message, limit: error.limit })
    }
    res.setHeader("retry-after", String(Math.ceil(error.retryAfterMs / 1000)))
    return json(res, 503, { error: "unavailable", message: error.message })
  }

  const sendToken = async (req: IncomingMessage, res: ServerResponse) => {
    const user = cookie(req, USER_COOKIE)
    if (user === undefined || !USER_ID.test(user)) {
      return json(res, 401, { error: "no_session", message: "load the page first: it sets the session cookie" })
    }
    json(res, 200, { token: await mintToken(secret, user), user, expiresInSeconds: TOKEN_TTL_SECONDS })
  }

  const sendPage = (req: IncomingMessage, res: ServerResponse) => {
    const headers: Record<string, string> = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }
    const user = cookie(req, USER_COOKIE)
    if (user === undefined || !USER_ID.test(user)) {
      // stands in for a login: a real app knows its user from its own session
      headers["set-cookie"] = `${USER_COOKIE}=u-${randomBytes(6).toString("hex")}; Path=/; HttpOnly; SameSite=Strict`
    }
    res.writeHead(200, headers).end(html)
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname
    const route = `${req.method} ${path}`
    const fail = (error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: "internal", message: String(error) })
    }
    if (route === "GET /" || route === "GET /index.html") return sendPage(req, res)
    if (route === "GET /styles.css") {
      return res.writeHead(200, { "content-type": "text/css; charset=utf-8", "cache-control": "no-store" }).end(css)
    }
    const asset = req.method === "GET" ? assets.get(path) : undefined
    if (asset) {
      const type = path.endsWith(".map") ? "application/json" : "text/javascript; charset=utf-8"
      return res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(asset)
    }
    if (route === "GET /token") return void sendToken(req, res).catch(fail)
    if (route === "POST /api/runs") return void startRun(req, res).catch(fail)
    if (!tidingsOwns(path)) json(res, 404, { error: "not_found" })
  }
  http.on("request", onRequest)
  http.off("request", starting)
  yield* Effect.addFinalizer(() => Effect.sync(() => http.off("request", onRequest)))

  const base = `http://${config.host}:${port}`
  process.stdout.write(
    [
      `agent console: ${base}/`,
      `  transport ${yield* TransportKind}, agent beat ${config.beatMs} ms, ${config.steps} steps per run`,
      `  a backend can start a run for the page's user (shown on the page):`,
      `  curl -X POST ${base}/api/runs -H 'authorization: Bearer ${apiKey}' -H 'content-type: application/json' \\`,
      `       -d '{"user": "<user id>", "query": "Compare three laptops"}'`,
      ""
    ].join("\n")
  )
  return yield* Effect.never
})

NodeRuntime.runMain(
  program.pipe(
    Effect.scoped,
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.interrupt
        : Effect.sync(() => {
            process.stderr.write(`agent console: ${Cause.pretty(cause)}\n`)
            process.exitCode = 1
          })
    )
  ),
  {
    // Ctrl-C and SIGTERM interrupt the program, which shuts down gracefully: a clean exit
    teardown: (exit, onExit) =>
      onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? (process.exitCode === 1 ? 1 : 0) : 1)
  }
)
