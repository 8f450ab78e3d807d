/**
 * Random bytes drawn from a pool refilled when used up: one CSPRNG call per 4 KiB instead of one per id, mask or
 * key (small `randomBytes` calls were 2% of the server's busy time while connections were being set up). The
 * returned view is overwritten once the pool is refilled: use it at once (encode or copy it).
 */
import { randomFillSync } from "node:crypto"

const pool = Buffer.alloc(4096)
let used = pool.length

/** `size` (at most 4,096) random bytes, as a view into the pool. */
export const pooledRandom = (size: number): Buffer => {
  if (used + size > pool.length) {
    randomFillSync(pool)
    used = 0
  }
  used += size
  return pool.subarray(used - size, used)
}
