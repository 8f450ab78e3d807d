/**
 * The run directory in PostgreSQL, through effect's SqlClient (the same `@effect/sql-pg` client the workflow
 * engine's storage uses): one table, `tidings_runs`, created at start if missing. Every move is one conditional
 * UPDATE, so concurrent gateways and workers agree. Each statement has a deadline, so a database that stopped
 * answering fails commands (typed, retryable) instead of hanging them.
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Option, Queue, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { withDeadline } from "./Deadline.ts"
import { RunStorageError } from "./errors.ts"
import { RunDirectory, type RunDirectoryShape } from "./RunDirectory.ts"
import { activeStates, finalStates, type RunRecord, type RunState } from "./RunRecord.ts"
import { Waiters } from "./Waiters.ts"

export interface SqlDirectoryOptions {
  /** The table (default `tidings_runs`). */
  readonly table?: string
  /** A statement that has not answered after this long fails (default 2,000 ms). */
  readonly statementTimeoutMs?: number
}

interface Row {
  readonly run_id: string
  readonly definition: string
  readonly execution_id: string
  readonly owner: string | null
  readonly channel: string
  readonly state: RunState
  readonly checkpoint: string | null
  readonly worker: string | null
  readonly cancel_reason: string | null
  readonly created_at: number | string
  readonly updated_at: number | string
}

const fromRow = (row: Row): RunRecord => ({
  runId: row.run_id,
  definition: row.definition,
  executionId: row.execution_id,
  owner: row.owner,
  channel: row.channel,
  state: row.state,
  checkpoint: row.checkpoint,
  worker: row.worker,
  cancelReason: row.cancel_reason,
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at)
})

export const make = (options: SqlDirectoryOptions = {}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const table = sql(options.table ?? "tidings_runs")
    const timeoutMs = options.statementTimeoutMs ?? 2000
    const guard = <A>(what: string, effect: Effect.Effect<A, unknown>): Effect.Effect<A, RunStorageError> =>
      withDeadline(effect, timeoutMs, () =>
        Effect.fail(new RunStorageError({ message: `run storage did not answer ${what} within ${timeoutMs} ms` }))
      ).pipe(
        Effect.mapError((error) =>
          error instanceof RunStorageError
            ? error
            : new RunStorageError({ message: `run storage failed ${what}: ${describe(error)}` })
        )
      )

    // Several processes may start together: a lost race to create the table is retried once.
    const createTable = sql`
      CREATE TABLE IF NOT EXISTS ${table} (
        run_id text PRIMARY KEY,
        definition text NOT NULL,
        execution_id text NOT NULL,
        owner text,
        channel text NOT NULL,
        state text NOT NULL,
        checkpoint text,
        worker text,
        cancel_reason text,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL
      )`
    yield* guard("creating its table", Effect.retry(createTable, { times: 1 }))

    // Changes gateways wait for (a run begun, a run ended) are announced with NOTIFY on this channel; a gateway
    // LISTENs on one connection (when the client is PostgreSQL's) and wakes whoever waits for that run.
    const channel = options.table ?? "tidings_runs"
    const waiters = new Waiters()
    const pg = yield* Effect.serviceOption(PgClient.PgClient)
    if (Option.isSome(pg)) {
      const listen = Effect.scoped(
        Effect.flatMap(pg.value.listen(channel), (queue) =>
          Effect.forever(Effect.map(Queue.take(queue), (notice) => waiters.wake(notice.payload)))
        )
      )
      // a lost listening connection is opened again; meanwhile waiters fall back on polling
      yield* Effect.forkScoped(Effect.retry(listen, Schedule.spaced(Duration.seconds(1))))
    }

    const directory: RunDirectoryShape = {
      create: (run, now) =>
        guard(
          "recording a run",
          sql`INSERT INTO ${table} ${sql.insert({
            run_id: run.runId,
            definition: run.definition,
            execution_id: run.executionId,
            owner: run.owner,
            channel: run.channel,
            state: "starting",
            created_at: now,
            updated_at: now
          })}`
        ).pipe(Effect.asVoid),
      get: (runId) =>
        guard(
          "reading a run",
          sql<Row>`SELECT * FROM ${table} WHERE run_id = ${runId}`.pipe(
            Effect.map((rows) => (rows[0] === undefined ? undefined : fromRow(rows[0])))
          )
        ),
      transition: (runId, move, now) =>
        guard(
          "moving a run",
          sql<{ run_id: string }>`
            WITH moved AS (
              UPDATE ${table} SET state = ${move.to}, checkpoint = ${move.at ?? null}, updated_at = ${now}
              WHERE run_id = ${runId} AND state IN ${sql.in(move.from)}
              ${move.onlyAt === undefined ? sql`` : sql`AND checkpoint = ${move.onlyAt}`}
              RETURNING run_id
            )
            SELECT run_id, pg_notify(${channel}, run_id) FROM moved`.pipe(Effect.map((rows) => rows.length === 1))
        ),
      enter: (runId, worker, now) =>
        guard(
          "entering a run",
          sql<{ state: RunState; worker: string | null }>`
            WITH before AS (SELECT state, worker FROM ${table} WHERE run_id = ${runId} FOR UPDATE),
            entered AS (
              UPDATE ${table} AS t
              SET worker = ${worker},
                  state = CASE WHEN before.state = 'starting' THEN 'running' ELSE before.state END,
                  updated_at = ${now}
              FROM before WHERE t.run_id = ${runId}
              RETURNING before.state AS state, before.worker AS worker
            )
            SELECT e.state, e.worker FROM entered e
            LEFT JOIN LATERAL (SELECT pg_notify(${channel}, ${runId}) WHERE e.state = 'starting') n ON true`.pipe(
            Effect.map((rows) => rows[0])
          )
        ),
      setCancelReason: (runId, reason, now) =>
        guard(
          "recording a cancel",
          sql`UPDATE ${table} SET cancel_reason = ${reason}, updated_at = ${now} WHERE run_id = ${runId}`
        ).pipe(Effect.asVoid),
      active: (limit) =>
        guard(
          "listing runs",
          sql<Row>`
            SELECT * FROM ${table} WHERE state IN ${sql.in(activeStates)} ORDER BY created_at LIMIT ${limit}`.pipe(
            Effect.map((rows) => rows.map(fromRow))
          )
        ),
      countActive: (owner) =>
        guard(
          "counting runs",
          (owner === null
            ? sql<{ n: number | string }>`
                SELECT count(*) AS n FROM ${table} WHERE owner IS NULL AND state IN ${sql.in(activeStates)}`
            : sql<{ n: number | string }>`
                SELECT count(*) AS n FROM ${table} WHERE owner = ${owner} AND state IN ${sql.in(activeStates)}`
          ).pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0)))
        ),
      prune: (before) =>
        guard(
          "pruning runs",
          sql<{ run_id: string }>`
            DELETE FROM ${table} WHERE state IN ${sql.in([...finalStates])} AND updated_at < ${before}
            RETURNING run_id`.pipe(Effect.map((rows) => rows.length))
        ),
      changed: (runId) => waiters.wait(runId),
      ping: guard("a ping", sql`SELECT 1`).pipe(Effect.asVoid)
    }
    return directory
  })

export const layer = (options?: SqlDirectoryOptions): Layer.Layer<RunDirectory, RunStorageError, SqlClient.SqlClient> =>
  Layer.effect(RunDirectory, make(options))

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const reason = (error as { reason?: { message?: unknown } }).reason
    if (reason && typeof reason.message === "string") return reason.message
    if ("message" in error && typeof error.message === "string") return error.message
  }
  return String(error)
}
