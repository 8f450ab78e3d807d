/** Forces a full garbage collection in a test process without --expose-gc (for memory-returns-to-baseline checks). */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

setFlagsFromString("--expose-gc")
const collect = runInNewContext("gc") as () => void

/** Heap used after two full collections, in bytes. */
export const settledHeap = async (): Promise<number> => {
  for (let i = 0; i < 2; i++) {
    collect()
    await new Promise((r) => setTimeout(r, 20))
  }
  return process.memoryUsage().heapUsed
}
