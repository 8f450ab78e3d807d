/**
 * The replay-frame cache's storage: values by stream (channel and epoch) and offset, in two generations like
 * GenerationCache (new entries go into the young generation; when it holds half the capacity it becomes the old
 * one and the previous old one is dropped whole). Offsets are numeric keys of a per-stream map, and the stream's
 * key string is built once per run of entries of the same stream (a replay page), not once per entry: a string
 * key per entry (`channel␀epoch␀offset`) had to be built, flattened and hashed for every lookup, 11% of the server's
 * busy time while it replayed 100,000 entries from Redis (`--cpu-prof`, docs/performance.md).
 */
export class ReplayFrameCache<V> {
  private young = new Map<string, Map<number, V>>()
  private old = new Map<string, Map<number, V>>()
  private youngSize = 0
  private lastChannel = ""
  private lastEpoch = ""
  private lastKey = "\u0000"

  constructor(private readonly capacity: number) {}

  private streamKey(channel: string, epoch: string): string {
    if (channel !== this.lastChannel || epoch !== this.lastEpoch) {
      this.lastChannel = channel
      this.lastEpoch = epoch
      this.lastKey = `${channel}\u0000${epoch}`
    }
    return this.lastKey
  }

  get(channel: string, epoch: string, offset: number): V | undefined {
    const key = this.streamKey(channel, epoch)
    return this.young.get(key)?.get(offset) ?? this.old.get(key)?.get(offset)
  }

  set(channel: string, epoch: string, offset: number, value: V): void {
    if (this.youngSize >= this.capacity / 2) {
      this.old = this.young
      this.young = new Map()
      this.youngSize = 0
    }
    const key = this.streamKey(channel, epoch)
    let stream = this.young.get(key)
    if (stream === undefined) {
      stream = new Map()
      this.young.set(key, stream)
    }
    stream.set(offset, value)
    this.youngSize++
  }
}
