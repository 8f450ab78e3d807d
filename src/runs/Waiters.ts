/** Fibers waiting for a run's record to change, by run id: what the directories' `changed` is made of. */
import { Effect } from "effect"

export class Waiters {
  private readonly waiting = new Map<string, Set<() => void>>()

  /** Completes at the next `wake(runId)`. */
  wait(runId: string): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      const wake = () => resume(Effect.void)
      let set = this.waiting.get(runId)
      if (set === undefined) this.waiting.set(runId, (set = new Set()))
      set.add(wake)
      return Effect.sync(() => {
        set.delete(wake)
        if (set.size === 0 && this.waiting.get(runId) === set) this.waiting.delete(runId)
      })
    })
  }

  wake(runId: string): void {
    const set = this.waiting.get(runId)
    if (set === undefined) return
    this.waiting.delete(runId)
    for (const wake of set) wake()
  }
}
