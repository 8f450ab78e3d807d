/**
 * A simulated agent for the built-in agent protocol, as a durable run: what `tidings serve` hosts by default and
 * the agent-console example uses. A run on channel `run:<id>` emits status phases, a streamed assistant message,
 * steps with screenshots, execution and task progress, browser updates, a checkpoint at step 3 that waits for
 * the human's `feedback`, a notification and a completion. `cancel` stops it at its next step and its cancel hook
 * publishes a cancelled completion. It stands in for a real agent during development: an application declares
 * its own runs the same way (docs/runs.md).
 *
 * - `run`: the definition (shared by gateways and workers); `worker(options)`: its implementation (a Layer for
 *   workers); `handlers`: the agent protocol's commands bound to it; `runs(options)`: the runs engine in one
 *   process (memory) hosting it, for embedding.
 */
import { Effect, Schema } from "effect"
import { type AgentCommandPayload, AgentProtocol, CommandsV2 } from "../protocol/agent/index.ts"
import type { RunClient } from "../runs/RunClient.ts"
import type { RunContext } from "../runs/RunContext.ts"
import * as RunDefinition from "../runs/RunDefinition.ts"
import * as RunsLayer from "../runs/RunsLayer.ts"
import * as RunWorker from "../runs/RunWorker.ts"
import type { Handlers } from "../server/Handlers.ts"
import * as RunCommands from "../server/RunCommands.ts"
import { screenshotPng } from "./Screenshot.ts"

export interface SimulatedAgentOptions {
  /** Delay between the run's beats (default 250 ms; tests use a few ms). */
  readonly beatMs?: number
  /** Steps per run (default 5). The checkpoint is raised at step 3 when there are at least 3. */
  readonly steps?: number
}

/** Runs a user may have going at once. */
export const MAX_RUNS_PER_USER = 5
/** The step whose checkpoint waits for the human. */
export const CHECKPOINT_STEP = 3

/** What starts a simulated run: the `start` command's payload. */
export const Input = Schema.Struct({
  query: CommandsV2.Query,
  mode: CommandsV2.Mode,
  context: Schema.optionalKey(Schema.Json)
})

/** The run's definition: known to every gateway and worker of a deployment. */
export const run = RunDefinition.make(AgentProtocol, "SimulatedAgent", { input: Input, answer: Schema.Json })

type Agent = RunContext<AgentProtocol, Schema.Json>

const words = (query: string) =>
  `Here is what I found about "${query.slice(0, 80)}". I searched, read three pages, and checked the details step by step.`.split(
    " "
  )

const isRejection = (answer: unknown) => answer === "reject" || answer === false

const script = (options: SimulatedAgentOptions) => (input: typeof Input.Type, agent: Agent) => {
  const beatMs = options.beatMs ?? 250
  const beat = Effect.sleep(beatMs)
  const stepCount = options.steps ?? 5
  const executionId = `e-${agent.runId}`
  const progress = (currentStep: number) => ({
    executionId,
    status: "running" as const,
    currentStep,
    totalSteps: stepCount,
    progress: Math.round((currentStep / stepCount) * 100)
  })
  const completed = (number: number) =>
    Effect.gen(function* () {
      const screenshot = { mime: "image/png" as const, data: screenshotPng(number) }
      yield* agent.publish("step_update", {
        executionId,
        step: { id: `s${number}`, number },
        status: "completed",
        action: `step ${number}`,
        explanation: `Finished step ${number}`,
        result: `result of step ${number}`,
        screenshot
      })
      yield* agent.publish("task_progress", {
        taskId: `t-${agent.runId}`,
        kind: "document_processing",
        stage: `step ${number}`,
        progress: Math.round((number / stepCount) * 100),
        message: `Processed ${number} of ${stepCount}`
      })
      yield* agent.publish("execution_update", progress(number))
    })

  return Effect.gen(function* () {
    yield* agent.step(
      "plan",
      Effect.gen(function* () {
        yield* agent.publish("execution_update", { ...progress(0), progress: 0 })
        yield* agent.publish("status", { phase: "thinking", detail: "Planning the run" })
        yield* beat
      })
    )
    yield* agent.step(
      "answer",
      Effect.gen(function* () {
        const messageId = `m-${agent.runId}`
        const message = yield* agent.stream("message_chunk", { restart: (first) => ({ ...first, restart: true }) })
        for (const [i, word] of words(input.query).entries()) {
          yield* message.publish({ messageId, role: "assistant", text: i === 0 ? word : ` ${word}`, done: false })
          yield* Effect.sleep(beatMs / 10)
        }
        yield* message.publish({ messageId, role: "assistant", text: "", done: true })
        yield* agent.publish("status", { phase: "browsing", detail: "Working through the steps" })
      })
    )
    for (let number = 1; number <= stepCount; number++) {
      const stepId = `s${number}`
      const step = { id: stepId, number }
      const url = `https://example.com/result/${number}`
      yield* agent.step(
        `step-${number}`,
        Effect.gen(function* () {
          yield* agent.publish("step_update", {
            executionId,
            step,
            status: "running",
            action: `step ${number}`,
            explanation: `Working on step ${number} of ${stepCount}`
          })
          yield* agent.publish("browser_command", { action: "OPEN_TAB", url })
          yield* agent.publish("browser_update", {
            sessionId: `b-${agent.runId}`,
            screenshot: { mime: "image/png", data: screenshotPng(number) },
            url
          })
          yield* beat
          if (number !== CHECKPOINT_STEP) yield* completed(number)
        })
      )
      if (number !== CHECKPOINT_STEP) continue
      const { answer, by } = yield* agent.checkpoint(
        stepId,
        Effect.gen(function* () {
          yield* agent.publish("execution_update", {
            executionId,
            status: "awaiting_input",
            currentStep: number,
            totalSteps: stepCount,
            progress: Math.round(((number - 1) / stepCount) * 100)
          })
          yield* agent.publish("status", { phase: "waiting_for_input", detail: "Waiting for your approval" })
          yield* agent.publish("checkpoint_required", {
            executionId,
            stepId,
            data: { question: "Continue with the purchase?" }
          })
        })
      )
      yield* agent.step(
        `resolved-${number}`,
        Effect.gen(function* () {
          yield* agent.publish("checkpoint_resolved", { executionId, stepId, by: by ?? "anonymous", answer })
          if (!isRejection(answer)) return yield* completed(number)
          yield* agent.publish("step_update", {
            executionId,
            step,
            status: "skipped",
            action: `step ${number}`,
            explanation: "Rejected at the checkpoint"
          })
        })
      )
    }
    yield* agent.step(
      "finish",
      Effect.gen(function* () {
        yield* agent.publish("notification", {
          level: "success",
          title: "Run finished",
          message: `All ${stepCount} steps done`
        })
        yield* agent.publish("execution_update", {
          executionId,
          status: "completed",
          currentStep: stepCount,
          totalSteps: stepCount,
          progress: 100
        })
        yield* agent.publish("status", { phase: "idle" })
        yield* agent.publish("completion", { outcome: "succeeded", executionId, result: { steps: stepCount } })
      })
    )
  })
}

/** The simulated agent on a worker. */
export const worker = (options: SimulatedAgentOptions = {}) =>
  RunWorker.implement(run, script(options), {
    onCancel: (agent, reason) =>
      Effect.gen(function* () {
        const executionId = `e-${agent.runId}`
        yield* agent.publish("execution_update", { executionId, status: "cancelled", currentStep: 0, progress: 0 })
        yield* agent.publish("completion", {
          outcome: "cancelled",
          executionId,
          reason: reason ?? "cancelled by the user"
        })
      }),
    onFailure: (agent, error) =>
      agent.publish("completion", {
        outcome: "failed",
        executionId: `e-${agent.runId}`,
        error: { code: "run_failed", message: error.slice(0, 4000) }
      })
  })

const bind = RunCommands.bind(AgentProtocol)

/** The agent protocol's commands, bound to the simulated agent's runs (need a RunClient: see `runs`). */
export const handlers: Handlers<AgentProtocol, RunClient> = {
  start: bind.start("start", run, {
    input: (payload: AgentCommandPayload<"start">) => ({
      query: payload.query,
      mode: payload.mode,
      ...(payload.context === undefined ? {} : { context: payload.context })
    }),
    result: (started) => started,
    limit: {
      perUser: MAX_RUNS_PER_USER,
      error: (limit) => ({ _tag: "RunLimitReached", limit, retryAfterMs: 1000 })
    }
  }),
  cancel: bind.cancel("cancel", {
    runId: (payload) => payload.runId,
    reason: (payload) => payload.reason,
    result: (outcome) => ({ outcome }),
    notFound: (runId) => ({ _tag: "RunNotFound", runId }),
    notOwner: (runId) => ({ _tag: "NotRunOwner", runId })
  }),
  feedback: bind.answer("feedback", run, {
    target: (payload) =>
      payload.target.kind === "question"
        ? Effect.fail({ _tag: "QuestionNotPending" as const, runId: payload.runId, question: payload.target.question })
        : { runId: payload.runId, checkpoint: payload.target.stepId, answer: payload.answer },
    result: () => ({ resumed: true }),
    notFound: (runId) => ({ _tag: "RunNotFound", runId }),
    notOwner: (runId) => ({ _tag: "NotRunOwner", runId }),
    notPending: (runId, stepId) => ({ _tag: "CheckpointNotPending", runId, stepId })
  })
}

/**
 * The runs engine hosting the simulated agent: in one process and memory by default (runs end with the
 * process), or by role over PostgreSQL (`storage`). Needs the Transport its runs publish through.
 */
export const runs = (options: SimulatedAgentOptions & Omit<RunsLayer.RunsOptions, "runs" | "workers"> = {}) =>
  RunsLayer.layer({ ...options, runs: [run], workers: [worker(options)] })
