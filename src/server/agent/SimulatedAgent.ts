/**
 * A simulated agent for the built-in agent protocol: the handlers `tidings serve` runs by default and the
 * agent-console example uses. `start` begins a run on channel `run:<id>` that emits status phases, a streamed
 * assistant message, steps with screenshots, execution and task progress, browser updates, a checkpoint that
 * waits for the human's `feedback`, a notification and a completion. `cancel` interrupts the run, whose
 * finalizer publishes a cancelled completion. It stands in for a real agent during development; a real
 * application embeds the server Layer with its own handlers.
 */
import { randomUUID } from "node:crypto"
import { Deferred, Effect } from "effect"
import type { AgentCommandPayload, AgentProtocol } from "../../protocol/agent/index.ts"
import type { CommandContext, Handlers, Publish } from "../Handlers.ts"
import { screenshotPng } from "./Screenshot.ts"

export interface SimulatedAgentOptions {
  /** Delay between the run's beats (default 250 ms; tests use a few ms). */
  readonly beatMs?: number
  /** Steps per run (default 5). The checkpoint is raised at step 3 when there are at least 3. */
  readonly steps?: number
  /** Runs a user may have going at once (default 5). */
  readonly maxRunsPerUser?: number
}

interface Run {
  readonly id: string
  readonly owner: string | null
  readonly channel: string
  readonly executionId: string
  finished: boolean
  /** Set by `cancel`; a run interrupted without one was stopped by the server shutting down. */
  cancelReason: string | undefined
  checkpoint: { readonly stepId: string; readonly answer: Deferred.Deferred<unknown> } | undefined
}

const words = (query: string) =>
  `Here is what I found about "${query.slice(0, 80)}". I searched, read three pages, and checked the details step by step.`.split(
    " "
  )

export const make = (options: SimulatedAgentOptions = {}): Handlers<AgentProtocol> => {
  const beat = Effect.sleep(options.beatMs ?? 250)
  const stepCount = options.steps ?? 5
  const maxRuns = options.maxRunsPerUser ?? 5
  const runs = new Map<string, Run>()
  /** Finished runs are remembered (for `cancel` → already_finished) up to this many, oldest forgotten first. */
  const keepFinished = 1000
  const finish = (run: Run) => {
    run.finished = true
    let finished = 0
    for (const r of runs.values()) if (r.finished) finished++
    for (const [id, r] of runs) {
      if (finished <= keepFinished) break
      if (r.finished) {
        runs.delete(id)
        finished--
      }
    }
  }
  const active = (owner: string | null) => [...runs.values()].filter((r) => r.owner === owner && !r.finished).length

  const script = (run: Run, query: string, publish: Publish<AgentProtocol>) =>
    Effect.gen(function* () {
      const { channel, executionId } = run
      const emit = <K extends Parameters<Publish<AgentProtocol>>[1]>(
        event: K,
        data: Parameters<Publish<AgentProtocol>>[2] & object
      ) => publish(channel, event, data as never).pipe(Effect.orDie)
      yield* emit("execution_update", {
        executionId,
        status: "running",
        currentStep: 0,
        totalSteps: stepCount,
        progress: 0
      })
      yield* emit("status", { phase: "thinking", detail: "Planning the run" })
      yield* beat
      const messageId = `m-${run.id}`
      for (const [i, word] of words(query).entries()) {
        yield* emit("message_chunk", { messageId, role: "assistant", text: i === 0 ? word : ` ${word}`, done: false })
        yield* Effect.sleep((options.beatMs ?? 250) / 10)
      }
      yield* emit("message_chunk", { messageId, role: "assistant", text: "", done: true })
      yield* emit("status", { phase: "browsing", detail: "Working through the steps" })
      for (let number = 1; number <= stepCount; number++) {
        const stepId = `s${number}`
        const step = { id: stepId, number }
        yield* emit("step_update", {
          executionId,
          step,
          status: "running",
          action: `step ${number}`,
          explanation: `Working on step ${number} of ${stepCount}`
        })
        yield* emit("browser_command", { action: "OPEN_TAB", url: `https://example.com/result/${number}` })
        const screenshot = { mime: "image/png" as const, data: screenshotPng(number) }
        yield* emit("browser_update", {
          sessionId: `b-${run.id}`,
          screenshot,
          url: `https://example.com/result/${number}`
        })
        yield* beat
        if (number === 3) {
          const answer = yield* Deferred.make<unknown>()
          run.checkpoint = { stepId, answer }
          yield* emit("execution_update", {
            executionId,
            status: "awaiting_input",
            currentStep: number,
            totalSteps: stepCount,
            progress: Math.round(((number - 1) / stepCount) * 100)
          })
          yield* emit("status", { phase: "waiting_for_input", detail: "Waiting for your approval" })
          yield* emit("checkpoint_required", { executionId, stepId, data: { question: "Continue with the purchase?" } })
          const decision = yield* Deferred.await(answer)
          run.checkpoint = undefined
          yield* emit("checkpoint_resolved", {
            executionId,
            stepId,
            by: run.owner ?? "anonymous",
            answer: decision as never
          })
          if (decision === "reject" || decision === false) {
            yield* emit("step_update", {
              executionId,
              step,
              status: "skipped",
              action: `step ${number}`,
              explanation: "Rejected at the checkpoint"
            })
            continue
          }
        }
        yield* emit("step_update", {
          executionId,
          step,
          status: "completed",
          action: `step ${number}`,
          explanation: `Finished step ${number}`,
          result: `result of step ${number}`,
          screenshot
        })
        yield* emit("task_progress", {
          taskId: `t-${run.id}`,
          kind: "document_processing",
          stage: `step ${number}`,
          progress: Math.round((number / stepCount) * 100),
          message: `Processed ${number} of ${stepCount}`
        })
        yield* emit("execution_update", {
          executionId,
          status: "running",
          currentStep: number,
          totalSteps: stepCount,
          progress: Math.round((number / stepCount) * 100)
        })
      }
      yield* emit("notification", { level: "success", title: "Run finished", message: `All ${stepCount} steps done` })
      yield* emit("execution_update", {
        executionId,
        status: "completed",
        currentStep: stepCount,
        totalSteps: stepCount,
        progress: 100
      })
      yield* emit("status", { phase: "idle" })
      run.finished = true
      yield* emit("completion", { outcome: "succeeded", executionId, result: { steps: stepCount } })
    }).pipe(
      Effect.onInterrupt(() =>
        Effect.gen(function* () {
          run.finished = true
          const { channel, executionId } = run
          yield* publish(channel, "execution_update", {
            executionId,
            status: "cancelled",
            currentStep: 0,
            progress: 0
          }).pipe(Effect.ignore)
          yield* publish(channel, "completion", {
            outcome: "cancelled",
            executionId,
            reason: run.cancelReason ?? "stopped: the server shut down"
          }).pipe(Effect.ignore)
        })
      ),
      Effect.ensuring(Effect.sync(() => finish(run)))
    )

  const owned = (runId: string, context: CommandContext<AgentProtocol>) => {
    const run = runs.get(runId)
    if (!run) return { error: { _tag: "RunNotFound" as const, runId } }
    if (run.owner !== context.user) return { error: { _tag: "NotRunOwner" as const, runId } }
    return { run }
  }

  return {
    start: (payload: AgentCommandPayload<"start">, context) =>
      Effect.gen(function* () {
        if (active(context.user) >= maxRuns) {
          return yield* Effect.fail({ _tag: "RunLimitReached" as const, limit: maxRuns, retryAfterMs: 1000 })
        }
        const id = randomUUID().slice(0, 12)
        const run: Run = {
          id,
          owner: context.user,
          channel: `run:${id}`,
          executionId: `e-${id}`,
          finished: false,
          cancelReason: undefined,
          checkpoint: undefined
        }
        runs.set(id, run)
        yield* context.jobs.start(id, script(run, payload.query, context.publish))
        return { runId: id, channel: run.channel }
      }),
    cancel: (payload, context) =>
      Effect.gen(function* () {
        const found = owned(payload.runId, context)
        if (found.error) return yield* Effect.fail(found.error)
        if (found.run.finished) return { outcome: "already_finished" as const }
        found.run.cancelReason = payload.reason ?? "cancelled by the user"
        const cancelled = yield* context.jobs.cancel(payload.runId)
        return { outcome: cancelled ? ("cancelled" as const) : ("already_finished" as const) }
      }),
    feedback: (payload, context) =>
      Effect.gen(function* () {
        const found = owned(payload.runId, context)
        if (found.error) return yield* Effect.fail(found.error)
        const { run } = found
        if (payload.target.kind === "question") {
          return yield* Effect.fail({
            _tag: "QuestionNotPending" as const,
            runId: run.id,
            question: payload.target.question
          })
        }
        if (!run.checkpoint || run.checkpoint.stepId !== payload.target.stepId) {
          return yield* Effect.fail({
            _tag: "CheckpointNotPending" as const,
            runId: run.id,
            stepId: payload.target.stepId
          })
        }
        yield* Deferred.succeed(run.checkpoint.answer, payload.answer)
        return { resumed: true }
      })
  }
}
