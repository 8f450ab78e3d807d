/**
 * Finding a channel's messages in the stream: its newest one, the first at or after a stream sequence, and the one
 * holding an offset — by "next message of this subject at or after sequence s" lookups, interpolating between
 * known points with bisection as a fallback (exact in one lookup when the channel's messages are dense in the
 * stream). A message not written by tidings is an error, not a skip: the subjects belong to the transport.
 */
import type { LastForMsgRequest, NextMsgRequest, SeqMsgRequest, StoredMsg } from "@nats-io/jetstream"
import { TransportError } from "../Transport.ts"
import { decode, type Stored } from "./codec.ts"
import { isStreamNotFound, type Link } from "./Link.ts"

export class StreamLookup {
  constructor(private readonly link: Link) {}

  /** The newest message of the channel's subject (an entry or an epoch marker), if any. */
  async last(channel: string): Promise<Stored | undefined> {
    const query: LastForMsgRequest = { last_by_subj: this.link.subject(channel) }
    return this.decodeOrFail(channel, await this.get(query))
  }

  /**
   * The channel's newest message as any replica of the stream knows it (a direct get, which followers answer too),
   * falling back to `last` when that fails. May be slightly behind on a follower: only for what is checked anyway —
   * the expected last sequence of a conditional append (a stale one is refused, and the append re-reads). It keeps
   * appends from waiting the request timeout on a lookup while a cluster elects the stream's new leader, when the
   * leader-only lookups hang. Only on a replicated stream (`Link.directLast`): elsewhere it is `last`.
   */
  async lastForAppend(channel: string): Promise<Stored | undefined> {
    const direct = this.link.directLast
    if (direct === undefined) return this.last(channel)
    let message: StoredMsg | null
    try {
      message = await this.link.call(() => direct(this.link.subject(channel)))
    } catch (error) {
      // unanswered: the server this node talks to is frozen or cut off, and the leader lookup would wait longer
      if (error instanceof Error && error.name === "TimeoutError") throw this.link.toTransportError(error)
      return this.last(channel)
    }
    return this.decodeOrFail(channel, message)
  }

  /**
   * The first message of the channel at or after `offset` (the message at `offset` itself unless it is gone),
   * given the channel's newest message.
   */
  async locate(channel: string, offset: number, last: Stored): Promise<Stored | undefined> {
    if (offset === last.offset) return last
    if (offset > last.offset) return undefined
    // The wanted message is at most this sequence (each later offset has a sequence of its own), and exactly
    // there when the channel's recent messages are contiguous in the stream: one lookup near the top.
    const newest = last.seq - (last.offset - offset)
    const probe = await this.next(channel, Math.max(0, newest))
    if (probe !== undefined && probe.offset === offset) return probe
    let low = await this.next(channel, 0)
    if (low === undefined || low.offset >= offset || low.epoch !== last.epoch) return low
    // Invariant: low.offset < offset < high.offset, and the wanted message's sequence is in (low.seq, maxSeq].
    let high = probe !== undefined && probe.offset > offset && probe.epoch === last.epoch ? probe : last
    let maxSeq = Math.min(newest - 1, high.seq - 1)
    for (let round = 0; low.seq < maxSeq; round++) {
      const seqSpan = high.seq - low.seq
      const offsetSpan = high.offset - low.offset
      // Interpolation, alternating with bisection so that an uneven spread cannot make it slow.
      let guess =
        seqSpan === offsetSpan || round % 2 === 0
          ? low.seq + Math.floor(((offset - low.offset) * seqSpan) / offsetSpan)
          : Math.floor((low.seq + 1 + maxSeq) / 2)
      guess = Math.min(Math.max(guess, low.seq + 1), maxSeq)
      const found = await this.next(channel, guess)
      if (found === undefined || found.epoch !== last.epoch) return undefined
      if (found.offset === offset) return found
      if (found.offset < offset) low = found
      else {
        high = found
        maxSeq = guess - 1
      }
    }
    return this.next(channel, low.seq + 1)
  }

  /** The channel's first message at or after stream sequence `seq`. */
  async next(channel: string, seq: number): Promise<Stored | undefined> {
    const query: SeqMsgRequest & NextMsgRequest = { seq, next_by_subj: this.link.subject(channel) }
    return this.decodeOrFail(channel, await this.get(query))
  }

  async get(query: SeqMsgRequest | LastForMsgRequest): Promise<StoredMsg | null> {
    const { jsm, config } = this.link
    try {
      return await this.link.call(() => jsm.streams.getMessage(config.stream, query))
    } catch (error) {
      if (!isStreamNotFound(error)) throw this.link.toTransportError(error)
      // Deleted under us: a recreated stream holds no message at all.
      await this.link.recoverStream()
      return null
    }
  }

  decodeOrFail(channel: string, message: StoredMsg | null): Stored | undefined {
    if (message === null) return undefined
    const stored = decode(channel, message.seq, message.header, message.data)
    if (stored === undefined) {
      throw new TransportError({
        message: `message ${message.seq} on ${message.subject} in stream ${this.link.config.stream} was not written by tidings (no position headers); the subjects under ${this.link.config.prefix} belong to the transport`,
        retryable: false
      })
    }
    return stored
  }
}
