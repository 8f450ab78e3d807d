/**
 * A map for the usual case of a single entry — a connection's subscriptions: nearly every connection holds one.
 * That entry lives in two fields; a Map exists only from the second key on. An empty V8 Map with its hash table
 * is about 280 bytes, as much as a fifth of what tidings keeps per idle connection on top of ws
 * (docs/performance.md, memory). Iteration order is not insertion order.
 */
const NONE: unique symbol = Symbol("none")

export class SmallMap<K, V> {
  private firstKey: K | typeof NONE = NONE
  private firstValue: V | undefined
  private more: Map<K, V> | undefined

  get size(): number {
    return (this.firstKey === NONE ? 0 : 1) + (this.more?.size ?? 0)
  }

  get(key: K): V | undefined {
    return this.firstKey === key ? this.firstValue : this.more?.get(key)
  }

  set(key: K, value: V): void {
    if (this.firstKey === key || (this.firstKey === NONE && !this.more?.has(key))) {
      this.firstKey = key
      this.firstValue = value
    } else {
      this.more ??= new Map()
      this.more.set(key, value)
    }
  }

  delete(key: K): boolean {
    if (this.firstKey !== key) return this.more?.delete(key) ?? false
    this.firstKey = NONE
    this.firstValue = undefined
    return true
  }

  keys(): Array<K> {
    const keys = this.more ? [...this.more.keys()] : []
    if (this.firstKey !== NONE) keys.push(this.firstKey)
    return keys
  }

  values(): Array<V> {
    const values = this.more ? [...this.more.values()] : []
    if (this.firstKey !== NONE) values.push(this.firstValue as V)
    return values
  }

  clear(): void {
    this.firstKey = NONE
    this.firstValue = undefined
    this.more = undefined
  }
}
