/**
 * The results of a worker's completed steps, kept in memory for the runs it executes. A run's body replays from its
 * start every time the run resumes (after each checkpoint answer), and the workflow engine answers each completed
 * step of the replay from storage: two statements per step, so a run's resumes get slower with every step it has
 * done. When the same worker replays the body, its steps are answered from here instead. It only ever holds what
 * the engine already stored (a step's result is kept once the engine has returned it), so another worker, or this
 * one after a restart, simply asks the engine as before.
 */
export class StepResults {
  private readonly runs = new Map<string, Map<string, unknown>>()

  /** At most this many runs' results are kept; the oldest run is forgotten first. */
  constructor(private readonly maxRuns = 10_000) {}

  get(executionId: string, step: string): { readonly value: unknown } | undefined {
    const steps = this.runs.get(executionId)
    return steps?.has(step) ? { value: steps.get(step) } : undefined
  }

  set(executionId: string, step: string, value: unknown): void {
    let steps = this.runs.get(executionId)
    if (steps === undefined) {
      if (this.runs.size >= this.maxRuns) this.runs.delete(this.runs.keys().next().value!)
      steps = new Map()
      this.runs.set(executionId, steps)
    }
    steps.set(step, value)
  }

  /** The run ended here, or left this worker. */
  forget(executionId: string): void {
    this.runs.delete(executionId)
  }
}
