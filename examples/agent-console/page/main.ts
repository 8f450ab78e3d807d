/**
 * The agent console's entry point (bundled to app.js): connects the tidings browser client, follows one run at
 * a time, and wires the buttons to the agent's commands (`start`, `cancel`, `feedback`).
 *
 * Following a run: subscribe to its channel from the position saved with its view — or from the start for a new
 * run — apply each event to the view, save both, redraw. A reload therefore picks up exactly after the last
 * event the saved view includes; a reconnect needs nothing from the page, as the client resubscribes from the
 * last position it accepted. Runs a backend starts for this user are announced on the personal channel
 * `user:<id>` (a `user_activity` with action `run_started`), which the page follows too.
 */
import * as Client from "../../../src/client/index.ts"
import { AgentProtocol } from "../../../src/protocol/agent/index.ts"
import type { Position } from "../../../src/protocol/index.ts"
import { type Connection, renderAnswering, renderBadge, renderRun, renderUser } from "./Render.ts"
import * as RunView from "./RunView.ts"
import * as SavedRun from "./SavedRun.ts"
import { toast } from "./Toasts.ts"

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * A fresh token from this page's own backend, for every connection (see `mintToken` in server.ts). Bounded in
 * time: the client waits for its token getter before it opens a socket, so a request that hangs would stall
 * every reconnect; one that fails is retried with backoff.
 */
const fetchToken = async (): Promise<string> => {
  const response = await fetch("/token", {
    credentials: "same-origin",
    cache: "no-store",
    signal: AbortSignal.timeout(5_000)
  })
  if (!response.ok) throw new Error(`GET /token answered HTTP ${response.status}`)
  const body = (await response.json()) as { readonly token: string }
  return body.token
}

const client = Client.make(AgentProtocol, {
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
  version: 2,
  token: fetchToken,
  // someone is watching: retry within seconds instead of backing off to the default 30 s
  backoff: { maxDelayMs: 3_000 },
  commandTimeoutMs: 15_000
})

type RunSubscription = ReturnType<typeof client.subscribe>

interface Followed {
  view: RunView.RunView
  /** Position of the last event applied to `view`. */
  position: Position | undefined
  /** Undefined for a run that had ended before this page loaded: there is nothing left to receive. */
  readonly subscription: RunSubscription | undefined
}

let current: Followed | undefined
let starting = false

const draw = () => renderRun(current?.view, starting)
const persist = () => {
  if (current) SavedRun.save({ view: current.view, position: current.position })
}

// ---- connection badge ------------------------------------------------------------------------------------------

const showConnection = () => renderBadge(navigator.onLine ? client.state : ("offline" satisfies Connection))
client.onState((state, error) => {
  showConnection()
  if (state === "closed" && error) toast("error", "Disconnected for good", error.message)
})
window.addEventListener("online", showConnection)
window.addEventListener("offline", showConnection)
showConnection()

// ---- following a run -------------------------------------------------------------------------------------------

const follow = (view: RunView.RunView, position: Position | undefined): void => {
  current?.subscription?.unsubscribe()
  const subscription: RunSubscription = client.subscribe(view.channel, {
    since: position,
    fromStart: position === undefined,
    onEvent: (event) => {
      if (current?.subscription !== subscription) return
      current.view = RunView.apply(current.view, event)
      current.position = { epoch: event.meta.epoch, offset: event.meta.offset }
      persist()
      draw()
      if (event.event === "notification") toast(event.data.level, event.data.title, event.data.message)
      if (event.event === "error") toast("error", event.data.code, event.data.message)
    },
    onReset: (notice) => {
      if (current?.subscription !== subscription) return
      current.view = RunView.reset(current.view, notice.reason)
      current.position = notice.position
      persist()
      draw()
      if (current.view.outcome?.kind === "lost") toast("error", "Run lost", "the server restarted without its log")
      else toast("warning", "The server no longer has this run's history", `reset: ${notice.reason}`)
    }
  })
  subscription.ready().catch((error: unknown) => toast("error", "Cannot follow the run", messageOf(error)))
  current = { view, position, subscription }
  persist()
  draw()
}

const saved = SavedRun.load()
if (saved?.view.outcome !== undefined) current = { ...saved, subscription: undefined }
else if (saved) follow(saved.view, saved.position)
draw()

// ---- runs a backend starts for this user -----------------------------------------------------------------------

client.ready().then(
  (welcome) => {
    renderUser(welcome.user)
    if (welcome.user === null) return
    client.subscribe(`user:${welcome.user}`, {
      since: SavedRun.loadUserPosition(),
      onEvent: (event) => {
        SavedRun.saveUserPosition(event.meta)
        if (event.event !== "user_activity" || event.data.action !== "run_started") return
        const channel = event.data.target
        if (current?.view.channel === channel) return
        // the simulated agent names a run's channel `run:<runId>`
        follow(RunView.initial(channel.slice("run:".length), channel, "backend"), undefined)
        toast("info", "A backend started a run for you", channel)
      },
      onReset: (notice) => SavedRun.saveUserPosition(notice.position)
    })
  },
  (error: unknown) => toast("error", "Cannot connect", messageOf(error))
)

// ---- commands --------------------------------------------------------------------------------------------------

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T

byId<HTMLFormElement>("start-form").addEventListener("submit", async (submit) => {
  submit.preventDefault()
  const query = byId<HTMLInputElement>("query").value.trim()
  if (!query) return
  starting = true
  draw()
  try {
    const { runId, channel } = await client.command("start", { query, mode: "auto" })
    follow(RunView.initial(runId, channel, "you"), undefined)
  } catch (error) {
    toast("error", "Could not start the run", messageOf(error))
  } finally {
    starting = false
    draw()
  }
})

byId<HTMLButtonElement>("cancel").addEventListener("click", async () => {
  if (!current || current.view.outcome) return
  try {
    const { outcome } = await client.command("cancel", {
      runId: current.view.runId,
      reason: "cancelled from the agent console"
    })
    if (outcome === "already_finished") toast("info", "The run had already finished")
  } catch (error) {
    toast("error", "Could not cancel the run", messageOf(error))
  }
})

const answer = async (decision: "approve" | "reject") => {
  const checkpoint = current?.view.checkpoint
  if (!current || !checkpoint) return
  renderAnswering(true)
  try {
    await client.command("feedback", {
      runId: current.view.runId,
      target: { kind: "step", stepId: checkpoint.stepId },
      answer: decision
    })
  } catch (error) {
    toast("error", "Could not answer the checkpoint", messageOf(error))
  } finally {
    renderAnswering(false)
  }
}
byId<HTMLButtonElement>("approve").addEventListener("click", () => answer("approve"))
byId<HTMLButtonElement>("reject").addEventListener("click", () => answer("reject"))
