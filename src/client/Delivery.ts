/**
 * In-order delivery for one channel. Jobs run one after the other; a job that returns a promise holds back
 * the next one until it settles, so an async handler finishes with event N before it sees event N + 1 and
 * an ack never covers an event whose handler is still running. Synchronous jobs run inline, with no
 * microtask hop.
 *
 * Owns only the ordering; what a job does (decode, call handlers, mark processed) is the client's.
 */

export type Job = () => PromiseLike<void> | undefined

export class Delivery {
  private readonly jobs: Array<Job> = []
  private running = false

  enqueue(job: Job): void {
    this.jobs.push(job)
    if (!this.running) this.drain()
  }

  /** Drops jobs not started yet (the client closed). */
  clear(): void {
    this.jobs.length = 0
  }

  private drain(): void {
    this.running = true
    while (this.jobs.length > 0) {
      const job = this.jobs.shift()!
      const pending = job()
      if (pending !== undefined) {
        pending.then(
          () => this.drain(),
          () => this.drain()
        )
        return
      }
    }
    this.running = false
  }
}
