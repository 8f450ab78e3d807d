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
 * sharing of a refresh per shard requires, and more), or, for up to ANSWERED_FOR_MS, from the last successful
 * refresh that covered all of them if no shard was acquired or released since it began. The empty refresh (the
 * probe Effect Cluster runs on the shared pool while lock storage is unhealthy) is passed through.
 *
 * Shard releases and acquisitions go one at a time. A worker giving shards to a worker that joins releases each
 * of them at once (150 of 300 for two workers), and each release, queued on the lock connection, counts its wait
 * against the same deadline: under load the late ones time out, and a lock operation that times out replaces the
 * lock connection, which drops every lock the worker holds — including those of shards it still executes runs
 * on, which the joining worker then takes and executes at the same time (seen in test/runs/Chaos.test.ts with the
 * machine loaded: messages streamed twice at once). Queued here, a release waits outside the deadline.
 */
import { Clock, Deferred, Effect, Exit, Layer, type Scope, Semaphore } from "effect"
import { type ClusterError, type RunnerAddress, RunnerStorage, type ShardId } from "effect/cluster"

type Held = Array<ShardId.ShardId>

interface Batch {
  readonly shards: Map<string, ShardId.ShardId>
  readonly done: Deferred.Deferred<Held, ClusterError.PersistenceError>
}

interface Lane {
  next: Batch | undefined
  running: boolean
  /** The last refresh that succeeded: when it began, the shards it asked about, those still held. */
  last: { readonly at: number; readonly asked: ReadonlySet<string>; readonly held: ReadonlySet<string> } | undefined
  /** Counts acquisitions and releases (at their start and end): a refresh that overlapped one is not kept. */
  changes: number
}

/**
 * How long a successful refresh answers later checks of the shards it covered (the worker's periodic refresh covers
 * all of them). Checks come before every stored reply; answered from the last refresh, they put no lock operation
 * in flight, and a lock operation in flight when the process is paused (a GC pause, a stopped container) outlives
 * its deadline when the process resumes, which replaces the lock connection and gives up every shard. A lost lock
 * is noticed at the next real refresh, at most this long plus the refresh interval later, as Effect Cluster's own
 * checks notice it at their next refresh.
 */
const ANSWERED_FOR_MS = 1000

/** `inner` with its refreshes merged; the merged refreshes run in `scope`, outliving interrupted callers. */
export const coalesce = (
  inner: RunnerStorage.RunnerStorage["Service"],
  scope: Scope.Scope
): RunnerStorage.RunnerStorage["Service"] => {
  // one lane per runner address (a worker only refreshes its own)
  const lanes = new Map<string, Lane>()
  const laneOf = (address: RunnerAddress.RunnerAddress): Lane => {
    const key = `${address.host}:${address.port}`
    let lane = lanes.get(key)
    if (lane === undefined) {
      lane = { next: undefined, running: false, last: undefined, changes: 0 }
      lanes.set(key, lane)
    }
    return lane
  }

  const drain = (address: RunnerAddress.RunnerAddress, lane: Lane): Effect.Effect<void> =>
    Effect.suspend(() => {
      const batch = lane.next
      if (batch === undefined) {
        lane.running = false
        return Effect.void
      }
      lane.next = undefined
      const changes = lane.changes
      // a failed refresh fails every caller of its batch, as it would have failed each of them
      return Effect.flatMap(Clock.currentTimeMillis, (at) =>
        Effect.exit(inner.refresh(address, batch.shards.values())).pipe(
          Effect.tap((exit) =>
            Effect.sync(() => {
              lane.last =
                Exit.isSuccess(exit) && lane.changes === changes
                  ? {
                      at,
                      asked: new Set(batch.shards.keys()),
                      held: new Set(exit.value.map((shardId) => shardId.toString()))
                    }
                  : undefined
            })
          )
        )
      ).pipe(
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
      const lane = laneOf(address)
      const last = lane.last
      if (last !== undefined && requested.every((shardId) => last.asked.has(shardId.toString()))) {
        const answer = requested.filter((shardId) => last.held.has(shardId.toString()))
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
          now - last.at < ANSWERED_FOR_MS && lane.last === last
            ? Effect.succeed(answer)
            : merged(address, lane, requested)
        )
      }
      return merged(address, lane, requested)
    })

  const merged = (
    address: RunnerAddress.RunnerAddress,
    lane: Lane,
    requested: ReadonlyArray<ShardId.ShardId>
  ): Effect.Effect<Held, ClusterError.PersistenceError> =>
    Effect.suspend(() => {
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

  /** Acquiring or releasing shards ends answers from the last refresh, before and after it. */
  const changing = <A, E>(address: RunnerAddress.RunnerAddress, change: Effect.Effect<A, E>): Effect.Effect<A, E> => {
    const invalidate = Effect.sync(() => {
      const lane = laneOf(address)
      lane.changes++
      lane.last = undefined
    })
    return Effect.andThen(invalidate, Effect.ensuring(change, invalidate))
  }

  // one release or acquisition at a time; refreshes (merged above) go beside them, waiting for at most one
  const oneAtATime = Semaphore.makeUnsafe(1)
  return {
    ...inner,
    refresh,
    acquire: (address, shardIds) => changing(address, oneAtATime.withPermits(1)(inner.acquire(address, shardIds))),
    release: (address, shardId) => changing(address, oneAtATime.withPermits(1)(inner.release(address, shardId))),
    releaseAll: (address) => changing(address, inner.releaseAll(address))
  }
}

/** Wraps the `RunnerStorage` it is provided with (e.g. `SqlRunnerStorage.layer`). */
export const layer: Layer.Layer<RunnerStorage.RunnerStorage, never, RunnerStorage.RunnerStorage> = Layer.effect(
  RunnerStorage.RunnerStorage,
  Effect.gen(function* () {
    return coalesce(yield* RunnerStorage.RunnerStorage, yield* Effect.scope)
  })
)
