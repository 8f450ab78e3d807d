/**
 * Many typed Node clients (src/client/node.ts) spread over several tidings nodes, and the tally of what each
 * received: per client and channel, events lost, duplicated and out of order, by the `n` every test event
 * carries (1, 2, 3 … per channel, the publisher's order) and its offset (which must equal `n`, channels start
 * empty).
 *
 * The client takes one URL, so failover is a socket factory (`rotatingSocket`) that connects each attempt to the
 * next node of the list: a client whose node died fails its next attempt on that node at once (connection
 * refused) and lands on a live one, without the test telling it which nodes are alive.
 */
import type { Client, ClientState, Subscription } from "../../../src/client/Client.ts"
import * as ClientNode from "../../../src/client/node.ts"
import { type SocketFactory, wsSocket } from "../../../src/client/node.ts"
import type { VersionOf } from "../../../src/protocol/Protocol.ts"
import { ChatProtocol } from "../../server/support/chatProtocol.ts"

type ChatClient = Client<VersionOf<typeof ChatProtocol, 2>>

/** A socket factory that ignores the client's URL and connects attempt k to `urls[(first + k) % urls.length]`. */
export const rotatingSocket = (
  urls: ReadonlyArray<string>,
  first: number,
  onOpen: (url: string) => void = () => {}
): SocketFactory => {
  const ws = wsSocket()
  let attempt = 0
  return (_url, protocols, handlers) => {
    const url = urls[(first + attempt++) % urls.length]!
    return ws(url, protocols, {
      ...handlers,
      onOpen: (protocol) => {
        onOpen(url)
        handlers.onOpen(protocol)
      }
    })
  }
}

/** What one client received on one channel. */
export class ChannelTally {
  received = 0
  duplicated = 0
  outOfOrder = 0
  /** Offsets that differ from `n`, or `n` outside 1..expected. */
  misplaced = 0
  private distinct = 0
  private highest = 0
  private readonly seen: Uint8Array

  constructor(readonly expected: number) {
    this.seen = new Uint8Array(expected + 1)
  }

  add(n: number, offset: number): void {
    this.received++
    if (n < 1 || n > this.expected || offset !== n) this.misplaced++
    if (n < 1 || n > this.expected) return
    if (this.seen[n] === 1) {
      this.duplicated++
      return
    }
    this.seen[n] = 1
    this.distinct++
    if (n < this.highest) this.outOfOrder++
    else this.highest = n
  }

  get lost(): number {
    return this.expected - this.distinct
  }

  get complete(): boolean {
    return this.distinct === this.expected
  }
}

export interface Member {
  readonly index: number
  readonly client: ChatClient
  readonly channels: ReadonlyArray<string>
  readonly tallies: ReadonlyMap<string, ChannelTally>
  readonly subscriptions: Array<Subscription<VersionOf<typeof ChatProtocol, 2>>>
  /** Node URL of the current (or last) connection. */
  connectedTo: string | undefined
  /** The node it connected to first. */
  home: string | undefined
  /** Connections opened (welcomed or not): 1 without a reconnect. */
  opens: number
  resets: number
  /** When the client last left `open`, and how long each outage lasted until `open` again (ms). */
  lostAt: number | undefined
  readonly outages: Array<number>
}

export interface FleetOptions {
  readonly urls: ReadonlyArray<string>
  readonly clients: number
  /** The channels client `i` subscribes to. */
  readonly channelsOf: (i: number) => ReadonlyArray<string>
  /** Events the publisher will write to a channel (its `n` run 1..expected). */
  readonly expected: (channel: string) => number
  readonly token: (i: number) => Promise<string>
}

export interface Totals {
  readonly clients: number
  readonly subscriptions: number
  readonly expected: number
  readonly received: number
  readonly lost: number
  readonly duplicated: number
  readonly outOfOrder: number
  readonly misplaced: number
  readonly resets: number
  readonly issues: number
}

export class Fleet {
  readonly members: Array<Member> = []
  /** Problems the clients reported through onError (each one a failure of the test). */
  readonly issues: Array<string> = []

  constructor(readonly options: FleetOptions) {
    for (let i = 0; i < options.clients; i++) this.members.push(this.join(i))
  }

  private join(index: number): Member {
    const channels = this.options.channelsOf(index)
    const tallies = new Map(channels.map((c) => [c, new ChannelTally(this.options.expected(c))]))
    const member: Member = {
      index,
      channels,
      tallies,
      connectedTo: undefined,
      home: undefined,
      opens: 0,
      resets: 0,
      lostAt: undefined,
      outages: [],
      subscriptions: [],
      client: undefined as unknown as ChatClient
    }
    const client = ClientNode.make(ChatProtocol, {
      url: this.options.urls[index % this.options.urls.length]!,
      version: 2,
      token: () => this.options.token(index),
      backoff: { initialDelayMs: 100, maxDelayMs: 1000 },
      socket: rotatingSocket(this.options.urls, index, (url) => {
        member.opens++
        member.connectedTo = url
        member.home ??= url
      })
    })
    ;(member as { client: ChatClient }).client = client
    client.onState((state: ClientState) => {
      if (state === "reconnecting") member.lostAt ??= performance.now()
      if (state === "open" && member.lostAt !== undefined) {
        member.outages.push(performance.now() - member.lostAt)
        member.lostAt = undefined
      }
    })
    client.onError((issue) => {
      const code = issue._tag === "ServerError" ? ` (${issue.code})` : ""
      if (this.issues.length < 50) this.issues.push(`client ${index}: ${issue._tag}${code}: ${issue.message}`)
    })
    client.onReset(() => {
      member.resets++
    })
    client.on("tick", (data, meta) => {
      tallies.get(meta.channel)?.add(data.n, meta.offset)
    })
    for (const channel of channels) member.subscriptions.push(client.subscribe(channel, { fromStart: true }))
    return member
  }

  /** Resolves once every client is open and every subscription live. */
  async ready(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        await m.client.ready()
        await Promise.all(m.subscriptions.map((s) => s.ready()))
      })
    )
  }

  complete(): boolean {
    for (const m of this.members) for (const t of m.tallies.values()) if (!t.complete) return false
    return true
  }

  totals(): Totals {
    let subscriptions = 0
    let expected = 0
    let received = 0
    let lost = 0
    let duplicated = 0
    let outOfOrder = 0
    let misplaced = 0
    let resets = 0
    for (const m of this.members) {
      resets += m.resets
      for (const t of m.tallies.values()) {
        subscriptions++
        expected += t.expected
        received += t.received
        lost += t.lost
        duplicated += t.duplicated
        outOfOrder += t.outOfOrder
        misplaced += t.misplaced
      }
    }
    return {
      clients: this.members.length,
      subscriptions,
      expected,
      received,
      lost,
      duplicated,
      outOfOrder,
      misplaced,
      resets,
      issues: this.issues.length
    }
  }

  close(): void {
    for (const m of this.members) m.client.close()
  }
}

/** Percentile `p` (0..1) of `values` (0 for none). */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}
