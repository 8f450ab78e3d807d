/**
 * The page of MessagePackClient.test.ts, bundled for the browser by esbuild (an IIFE): tidings' browser client
 * (src/client/index.ts over the browser's own WebSocket) with the codec and envelope (`compact`, default true) named
 * in the query string. It records the subprotocol the server selected in `window.selected` and every event of the
 * channel in `window.received`.
 */
import * as Client from "../../../src/client/index.ts"
import { AgentProtocol } from "../../../src/protocol/agent/index.ts"

interface PageState {
  selected?: string
  received: Array<{ offset: number; event: string; data: unknown }>
}

const state = window as unknown as PageState
state.received = []

/** The browser's WebSocket, noting the subprotocol the server selected. */
class RecordingWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | Array<string>) {
    super(url, protocols)
    this.addEventListener("open", () => {
      state.selected = this.protocol
    })
  }
}

const params = new URLSearchParams(location.search)
const client = Client.make(AgentProtocol, {
  url: params.get("ws")!,
  version: 2,
  token: params.get("token")!,
  codec: params.get("codec") === "msgpack" ? "msgpack" : "json",
  compact: params.get("compact") !== "false",
  socket: Client.fromWebSocket(RecordingWebSocket)
})
client.subscribe(params.get("channel")!, {
  onEvent: (event) => {
    state.received.push({ offset: event.meta.offset, event: event.event, data: event.data })
  }
})
