/**
 * Several server processes behind one port (node:cluster): `supervise` in the primary forks and watches them,
 * `ProcessGroup.layer` in each process makes its server answer `/readyz` and `/metrics` for the whole node.
 *
 * ```ts
 * if (cluster.isPrimary) supervise({ processes: 4 }).exited.then((code) => process.exit(code))
 * else NodeRuntime.runMain(Layer.launch(ServerLive.pipe(Layer.provide(ProcessGroup.layer))))
 * ```
 */
export {
  type Balancing,
  kernelBalancingAvailable,
  onPort as balancingOnPort,
  resolve as resolveBalancing
} from "./Balancing.ts"
export { layer, type Member, ProcessGroup, type ProcessGroupShape } from "./ProcessGroup.ts"
export type { RestartBackoffOptions } from "./RestartBackoff.ts"
export { type SuperviseOptions, type Supervisor, supervise } from "./Supervisor.ts"
