/**
 * Effect Cluster's runner storage with concurrent shard-lock refreshes merged into one.
 *
 * Before a worker stores the final reply of a persisted request (every step of a run, every suspension), Effect
 * Cluster confirms that it still holds the request's shard with `RunnerStorage.refresh(self, [shard])`
 * (Sharding.ts `confirmShardLock`, the entity manager's `isShardOwned`). Over PostgreSQL a refresh is a heartbeat
 * UPDATE and a read of pg_locks on the one connection that holds the worker's advisory locks, so the refreshes of
 * concurrent replies on different shards queue on that connection, one after another, behind the worker's
 * periodic refresh of all its shards. With a few dozen runs going the queue outgrows the lock operation deadline
 * (`min(shardLockRefreshInterval, shardLockExpiration / 3)`): the replies' checks fail, so their requests are
 * reset and run again, and the periodic refresh fails, so the worker drops every shard, interrupts every run
 * ("Shard lock storage is unhealthy") and takes them back a moment later: runs stall for seconds.
 *
 * Here a refresh asked for while another is in flight waits for it and joins the next one, which refreshes every
 * shard asked for meanwhile: one heartbeat and one lock read however many replies wait. Each caller gets the
 * shards of its own request that are still held, from a refresh that began after it asked (as Effect Cluster's own
 * sharing of a refresh per shard requires, and more). The empty refresh (the probe Effect Cluster runs on the
 * shared pool while lock storage is unhealthy) is passed through.
 */
import { Deferred, Effect, Layer, type Scope } from "effect"
import { type ClusterError, type RunnerAddress, RunnerStorage, type ShardId } from "effect/cluster"

type Held = Array<ShardId.ShardId>

interface Batch {
  readonly shards: Map<string, ShardId.ShardId>
  readonly done: Deferred.Deferred<Held, ClusterError.PersistenceError>
}

interface Lane {
  next: Batch | undefined
  running: boolean
}

/** `inner` with its refreshes merged; the merged refreshes run in `scope`, outliving interrupted callers. */
export const coalesce = (
  inner: RunnerStorage.RunnerStorage["Service"],
  scope: Scope.Scope
): RunnerStorage.RunnerStorage["Service"] => {
  // one lane per runner address (a worker only refreshes its own)
  const lanes = new Map<string, Lane>()

  const drain = (address: RunnerAddress.RunnerAddress, lane: Lane): Effect.Effect<void> =>
    Effect.suspend(() => {
      const batch = lane.next
      if (batch === undefined) {
        lane.running = false
        return Effect.void
      }
      lane.next = undefined
      // a failed refresh fails every caller of its batch, as it would have failed each of them
      return Effect.exit(inner.refresh(address, batch.shards.values())).pipe(
        Effect.flatMap((exit) => Deferred.done(batch.done, exit)),
        // interrupted (the storage is closing): release its callers, and let a later refresh start again
        Effect.onInterrupt(() =>
          Effect.andThen(
            Deferred.interrupt(batch.done),
            Effect.sync(() => {
              lane.running = false
            })
          )
        ),
        Effect.andThen(drain(address, lane))
      )
    })

  const refresh = (
    address: RunnerAddress.RunnerAddress,
    shardIds: Iterable<ShardId.ShardId>
  ): Effect.Effect<Held, ClusterError.PersistenceError> =>
    Effect.suspend(() => {
      const requested = Array.from(shardIds)
      if (requested.length === 0) return inner.refresh(address, requested)
      const key = `${address.host}:${address.port}`
      let lane = lanes.get(key)
      if (lane === undefined) {
        lane = { next: undefined, running: false }
        lanes.set(key, lane)
      }
      let batch = lane.next
      if (batch === undefined) {
        batch = { shards: new Map(), done: Deferred.makeUnsafe<Held, ClusterError.PersistenceError>() }
        lane.next = batch
      }
      for (const shardId of requested) batch.shards.set(shardId.toString(), shardId)
      const wanted = new Set(requested.map((shardId) => shardId.toString()))
      const held = Effect.map(Deferred.await(batch.done), (shards) =>
        shards.filter((shardId) => wanted.has(shardId.toString()))
      )
      if (lane.running) return held
      lane.running = true
      return Effect.andThen(Effect.forkIn(drain(address, lane), scope, { startImmediately: true }), held)
    })

  return { ...inner, refresh }
}

/** Wraps the `RunnerStorage` it is provided with (e.g. `SqlRunnerStorage.layer`). */
export const layer: Layer.Layer<RunnerStorage.RunnerStorage, never, RunnerStorage.RunnerStorage> = Layer.effect(
  RunnerStorage.RunnerStorage,
  Effect.gen(function* () {
    return coalesce(yield* RunnerStorage.RunnerStorage, yield* Effect.scope)
  })
)
