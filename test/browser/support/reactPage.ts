/**
 * The page of ReactHooks.test.ts, bundled for the browser by esbuild (an IIFE): tidings' browser client
 * (src/client/index.ts, the browser's WebSocket) and `tidings/react` (src/react/index.ts) with React 19 in
 * StrictMode. A component shows the connection's state (`useConnectionState`) and a run's events folded into a
 * list (`useChannel`), one row per event with its offset, and the streamed message. The server's URL, the token
 * and the channel come in the page's query string. Each rendered connection state is appended to
 * `window.renderedStates` (when it differs from the last one).
 */
import { createElement, StrictMode, useEffect } from "react"
import { createRoot } from "react-dom/client"
import * as Client from "../../../src/client/index.ts"
import { AgentProtocol } from "../../../src/protocol/agent/index.ts"
import { type ChannelInput, useChannel, useConnectionState } from "../../../src/react/index.ts"

type V2 = typeof AgentProtocol.latest

interface Row {
  readonly offset: number
  readonly event: string
}

interface RunView {
  readonly rows: ReadonlyArray<Row>
  readonly message: string
  readonly resets: number
}

const empty: RunView = { rows: [], message: "", resets: 0 }

const foldRun = (view: RunView, input: ChannelInput<V2>): RunView => {
  if (input.kind === "reset") return { ...view, resets: view.resets + 1 }
  const rows = [...view.rows, { offset: input.meta.offset, event: input.event }]
  if (input.event === "message_chunk") {
    return { ...view, rows, message: input.data.restart ? input.data.text : view.message + input.data.text }
  }
  return { ...view, rows }
}

const params = new URLSearchParams(location.search)
const client = Client.make(AgentProtocol, {
  url: params.get("ws")!,
  version: 2,
  token: params.get("token")!,
  // a test's restart is over in seconds: keep the reconnect delays short
  backoff: { initialDelayMs: 100, maxDelayMs: 1000 }
})
const channel = params.get("channel")!
const renderedStates: Array<string> = []
;(window as unknown as { renderedStates: Array<string> }).renderedStates = renderedStates

function RunPanel() {
  const connection = useConnectionState(client)
  const run = useChannel(client, channel, foldRun, empty)
  useEffect(() => {
    if (renderedStates.at(-1) !== connection) renderedStates.push(connection)
  }, [connection])
  return createElement(
    "section",
    null,
    createElement("span", { id: "state", "data-state": connection }, connection),
    createElement("p", { id: "message" }, run.message),
    createElement("p", { id: "resets", "data-resets": run.resets }, `${run.resets} resets`),
    createElement(
      "ol",
      { id: "events" },
      // keyed by place, not offset: a repeated event must show as a row of its own
      run.rows.map((row, i) =>
        createElement("li", { key: i, "data-offset": row.offset, "data-event": row.event }, row.event)
      )
    )
  )
}

createRoot(document.getElementById("root")!).render(createElement(StrictMode, null, createElement(RunPanel)))
