/**
 * Coalesces calls made in the same tick into one call per key, so many appends in flight to one channel cost
 * one script call instead of one each (Redis and the client both pay a fixed cost per call).
 *
 * The first call of a tick schedules a flush on `process.nextTick`. Node runs it after the promise jobs queued
 * meanwhile, so the fibers resumed by one Redis reply share a batch, while a lone call waits for nothing.
 * The flush hands each key's items, in call order, to `run` in chunks of at most `maxBatch`, and settles each
 * caller with its own result, or every caller of a chunk with the chunk's failure. It owns no Redis knowledge:
 * Redis.ts supplies `run`.
 */

export interface Batcher<K, A, R> {
  /** Queues `item` for `key`'s next batch; resolves with its own result. */
  readonly add: (key: K, item: A) => Promise<R>
}

interface Pending<A, R> {
  readonly item: A
  readonly resolve: (result: R) => void
  readonly reject: (cause: unknown) => void
}

export const make = <K, A, R>(
  run: (key: K, items: ReadonlyArray<A>) => Promise<ReadonlyArray<R>>,
  maxBatch: number
): Batcher<K, A, R> => {
  let queued = new Map<K, Array<Pending<A, R>>>()

  const dispatch = (key: K, chunk: ReadonlyArray<Pending<A, R>>): void => {
    // The executor turns a synchronous throw of `run` into a rejection like any other.
    new Promise<ReadonlyArray<R>>((resolve) =>
      resolve(
        run(
          key,
          chunk.map((pending) => pending.item)
        )
      )
    ).then(
      (results) => {
        for (let i = 0; i < chunk.length; i++) chunk[i]!.resolve(results[i]!)
      },
      (cause: unknown) => {
        for (const pending of chunk) pending.reject(cause)
      }
    )
  }

  const flush = (): void => {
    const batches = queued
    queued = new Map()
    for (const [key, pending] of batches) {
      for (let start = 0; start < pending.length; start += maxBatch) {
        dispatch(key, pending.length <= maxBatch ? pending : pending.slice(start, start + maxBatch))
      }
    }
  }

  return {
    add: (key, item) =>
      new Promise<R>((resolve, reject) => {
        if (queued.size === 0) process.nextTick(flush)
        const pending = queued.get(key)
        if (pending === undefined) queued.set(key, [{ item, resolve, reject }])
        else pending.push({ item, resolve, reject })
      })
  }
}
