/**
 * The same run scenario (support/scenario.ts: steps, a checkpoint answered from another gateway, a cancel from
 * another gateway, ownership) in every deployment:
 * - one process, memory runs and memory transport (the embedded default);
 * - separate processes of the real CLI (`tidings serve --role gateway|worker`): 2 gateways and 1 worker sharing a
 *   private PostgreSQL, with Redis, then with NATS, as the transport.
 * A missing PostgreSQL, Redis or NATS is a visible skip locally and a failure in CI.
 */
import { Effect, Layer } from "effect"
import { afterAll, describe, it } from "vitest"
import * as SimulatedAgent from "../../src/agent/SimulatedAgent.ts"
import { AgentProtocol } from "../../src/protocol/agent/index.ts"
import { RunClient } from "../../src/runs/RunClient.ts"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { type Broker, brokerBinary, brokerKinds, startBroker } from "../cluster/support/brokers.ts"
import { CLI_SCRIPT, killAll, type NodeProcess, spawnNode } from "../cluster/support/cluster.ts"
import { SECRET } from "../server/support/testServer.ts"
import { freePort } from "../support/freePort.ts"
import { type PostgresServer, requirePostgres, startPostgresServer } from "../support/postgresServer.ts"
import { runScenario } from "./support/scenario.ts"

describe("run scenario, one process (memory)", () => {
  it("steps, a checkpoint answered, a cancel, ownership", async () => {
    // one runs layer and one transport shared by the server and the test (which asks RunClient.get)
    const shared = SimulatedAgent.runs({ beatMs: 10 }).pipe(Layer.provideMerge(Memory.layer()))
    const layer = Server.layer({
      protocol: AgentProtocol,
      handlers: SimulatedAgent.handlers,
      port: 0,
      auth: { secret: SECRET }
    }).pipe(Layer.provideMerge(shared))
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const server = yield* Server.TidingsServer
          const runs = yield* RunClient
          const state = (runId: string) => Effect.runPromise(runs.get(runId))
          yield* Effect.promise(() => runScenario({ gateways: [server.url], secret: SECRET, state }))
        }).pipe(Effect.provide(layer))
      )
    )
  })
})

const postgres = requirePostgres("Run scenario across processes")

for (const kind of brokerKinds) {
  const binary = brokerBinary(kind, `Run scenario across processes (${kind})`)
  if (binary === undefined || postgres === undefined) {
    describe.skip(`run scenario across processes, PostgreSQL with ${kind} (not installed)`, () => {
      it("skipped", () => {})
    })
    continue
  }

  describe(`run scenario across processes, PostgreSQL with ${kind}`, () => {
    let broker: Broker | undefined
    let database: PostgresServer | undefined
    const processes: Array<NodeProcess> = []

    afterAll(async () => {
      await killAll()
      await broker?.close()
      await database?.dispose()
    })

    it("2 gateways and 1 worker (tidings serve --role): steps, a checkpoint answered, a cancel, ownership", async () => {
      ;[broker, database] = await Promise.all([startBroker(kind, binary), startPostgresServer(postgres)])
      const env = {
        ...broker.env("runs"),
        TIDINGS_JWT_SECRET: SECRET,
        TIDINGS_DATABASE_URL: database.url,
        TIDINGS_AGENT_BEAT_MS: "20"
      }
      // the worker first: it creates the cluster's tables
      processes.push(
        await spawnNode({
          name: "worker",
          script: CLI_SCRIPT,
          args: ["serve", "--role", "worker", "--runner-port", String(await freePort())],
          env
        })
      )
      const gateways = await Promise.all(
        [0, 1].map((k) =>
          spawnNode({ name: `gateway ${k}`, script: CLI_SCRIPT, args: ["serve", "--role", "gateway"], env })
        )
      )
      processes.push(...gateways)
      await runScenario({ gateways: gateways.map((g) => g.url), secret: SECRET })
    })
  })
}
