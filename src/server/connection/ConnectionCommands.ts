/**
 * A connection's command bookkeeping, made at its first command (most connections never send one): the command
 * rate limit, the refusals in a row it has earned, and the commands still running by id.
 */
import type { Fiber } from "effect"
import { TokenBucket } from "./TokenBucket.ts"

export class ConnectionCommands {
  readonly rate: TokenBucket
  refusalsInARow = 0
  /** Commands in flight by id (created at the first one that does not finish at once). */
  private running: Map<string, Fiber.Fiber<void, never>> | undefined

  constructor(perSecond: number, burst: number, now: number) {
    this.rate = new TokenBucket(perSecond, burst, now)
  }

  isRunning(id: string): boolean {
    return this.running?.has(id) ?? false
  }

  track(id: string, fiber: Fiber.Fiber<void, never>): void {
    ;(this.running ??= new Map()).set(id, fiber)
  }

  finished(id: string): void {
    this.running?.delete(id)
  }

  /** The fibers still running; forgets them. */
  takeRunning(): Array<Fiber.Fiber<void, never>> {
    const fibers = this.running ? [...this.running.values()] : []
    this.running = undefined
    return fibers
  }
}
