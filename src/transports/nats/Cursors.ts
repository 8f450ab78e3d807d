/**
 * Session cursors in a NATS KV bucket: one key `<session token>.<channel token>` per acknowledged channel, its
 * value the position as JSON. The bucket is a KV-compatible stream (`KV_<bucket>` on `$KV.<bucket>.>`, one
 * message per key, `max_age` = cursorTtlMs), written with plain JetStream publishes so no KV client is needed,
 * and readable with `nats kv get <bucket> <key>`. Each key expires cursorTtlMs after its own last write.
 *
 * Loading a session asks the stream which of the session's keys exist (stream info with a subject filter) and
 * fetches their last values concurrently. Creating the bucket is Nats.ts's job.
 */
import { Schema } from "effect"
import { Position } from "../../protocol/Position.ts"
import { channelToken, tokenChannel } from "./codec.ts"
import { isNoStream, isStreamNotFound, type Link } from "./Link.ts"

const isPosition = Schema.is(Position)
const textEncoder = new TextEncoder()

export const cursorStreamName = (bucket: string): string => `KV_${bucket}`
export const cursorSubjects = (bucket: string): string => `$KV.${bucket}.>`

export class Cursors {
  constructor(
    private readonly link: Link,
    private readonly bucket: string,
    /** Re-creates the bucket's stream when it was deleted under us. */
    private readonly recover: () => Promise<void>
  ) {}

  async save(session: string, channel: string, position: Position): Promise<void> {
    const subject = `$KV.${this.bucket}.${channelToken(session)}.${channelToken(channel)}`
    const body = textEncoder.encode(JSON.stringify({ epoch: position.epoch, offset: position.offset }))
    await this.recovering(() => this.link.publisher.publish(subject, body))
  }

  async load(session: string): Promise<ReadonlyMap<string, Position>> {
    const prefix = `$KV.${this.bucket}.${channelToken(session)}.`
    const stream = cursorStreamName(this.bucket)
    const { jsm } = this.link
    const info = await this.recovering(() => jsm.streams.info(stream, { subjects_filter: `${prefix}*` }))
    const subjects = Object.keys(info.state.subjects ?? {})
    const values = await Promise.all(
      subjects.map((subject) => this.link.call(() => jsm.streams.getMessage(stream, { last_by_subj: subject })))
    )
    const cursors = new Map<string, Position>()
    for (const message of values) {
      if (message === null) continue
      // A KV delete or purge leaves a marker with an operation header and no value.
      if (message.header?.get("KV-Operation")) continue
      let value: unknown
      try {
        value = message.json()
      } catch {
        continue
      }
      if (isPosition(value)) {
        cursors.set(tokenChannel(message.subject.slice(prefix.length)), { epoch: value.epoch, offset: value.offset })
      }
    }
    return cursors
  }

  /** Runs a request; when the bucket's stream is missing, re-creates it (empty) and runs it once more. */
  private async recovering<A>(request: () => Promise<A>): Promise<A> {
    try {
      return await this.link.call(request)
    } catch (error) {
      if (!(isNoStream(error) || isStreamNotFound(error)) || !this.link.connected) throw error
      await this.link.call(this.recover)
      return this.link.call(request)
    }
  }
}
