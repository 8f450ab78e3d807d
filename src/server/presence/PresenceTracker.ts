/**
 * A node's side of presence: which of its connections are members of which channels, written to the transport's
 * PresenceStore as they subscribe and leave, renewed by one heartbeat, announced with the application's join and
 * leave events (appended to the channel's log, so they reach every node and resume like any event). Operations on
 * one member run in order (a quick subscribe-unsubscribe never leaves a ghost); a sweep every third of the expiry
 * removes the members of nodes that went silent and announces their leave, once across all nodes.
 */
import { Effect, Fiber } from "effect"
import type { AnyProtocol, EventOf, LatestOf } from "../../protocol/Protocol.ts"
import type { PublishError } from "../../transports/Publisher.ts"
import type { PresenceMember, PresenceStore } from "../../transports/presence/PresenceStore.ts"
import type { TransportError } from "../../transports/Transport.ts"
import { compile, type Matcher } from "../auth/ChannelPattern.ts"
import { defaultPresenceExpiryMs, type PresenceOptions, type PresenceRule } from "./PresenceOptions.ts"

type Announce = (member: PresenceMember, channel: string) => EventOf<LatestOf<AnyProtocol>>

interface CompiledRule {
  readonly matches: Matcher
  readonly join: Announce | undefined
  readonly leave: Announce | undefined
}

export interface TrackerEnv {
  readonly store: PresenceStore
  /** This process's node id (random per process). */
  readonly node: string
  readonly publish: (
    channel: string,
    event: string,
    data: unknown,
    idempotencyKey: string
  ) => Effect.Effect<unknown, PublishError>
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  readonly now: () => number
}

export class PresenceTracker {
  private readonly rules: ReadonlyArray<CompiledRule>
  readonly expiryMs: number
  /** This node's members, by `<channel>\n<member id>`. */
  private readonly local = new Map<string, { channel: string; member: PresenceMember }>()
  /** The last operation of each member, which the next one waits for. */
  private readonly pending = new Map<string, Fiber.Fiber<void>>()
  /** Bumped each time this node writes its members again: a re-announced join is a new event, not a retry. */
  private generation = 0
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(
    options: PresenceOptions<AnyProtocol>,
    private readonly env: TrackerEnv
  ) {
    this.rules = options.rules.map((rule: PresenceRule<AnyProtocol>) => ({
      matches: compile([rule.channels], null),
      join: rule.join,
      leave: rule.leave
    }))
    this.expiryMs = options.expiryMs ?? defaultPresenceExpiryMs
  }

  /** Whether `channel` has presence. */
  enabled(channel: string): boolean {
    return this.rules.some((rule) => rule.matches(channel))
  }

  /** Registers the node (before any member joins), then renews it and sweeps every third of the expiry. */
  start(): Effect.Effect<void, TransportError> {
    this.timer ??= setInterval(() => this.env.fork(this.tick()), Math.max(100, Math.floor(this.expiryMs / 3)))
    return Effect.asVoid(this.env.store.heartbeat(this.env.node, this.env.now() + this.expiryMs))
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  joined(member: PresenceMember, channel: string): void {
    const rule = this.rules.find((r) => r.matches(channel))
    const key = `${channel}\n${member.id}`
    if (rule === undefined || this.local.has(key)) return
    this.local.set(key, { channel, member })
    this.inOrder(key, this.writeJoin(rule, channel, member))
  }

  left(memberId: string, channel: string): void {
    const key = `${channel}\n${memberId}`
    if (!this.local.delete(key)) return
    const rule = this.rules.find((r) => r.matches(channel))
    this.inOrder(
      key,
      Effect.flatMap(this.env.store.leave(channel, memberId), (member) =>
        member === undefined ? Effect.void : this.announce(rule?.leave, member, channel, "leave")
      )
    )
  }

  /** The channel's members, on every node. */
  members(channel: string): Effect.Effect<ReadonlyArray<PresenceMember>, TransportError> {
    return this.env.store.list(channel)
  }

  private writeJoin(rule: CompiledRule, channel: string, member: PresenceMember): Effect.Effect<void, unknown> {
    return Effect.andThen(
      this.env.store.join(channel, member, this.env.node),
      this.announce(rule.join, member, channel, "join")
    )
  }

  private announce(
    make: Announce | undefined,
    member: PresenceMember,
    channel: string,
    kind: "join" | "leave"
  ): Effect.Effect<void, PublishError> {
    if (make === undefined) return Effect.void
    const { event, data } = make(member, channel)
    return Effect.asVoid(this.env.publish(channel, event, data, `presence:${kind}:${member.id}:${this.generation}`))
  }

  /** Runs `operation` after the member's previous one; failures are logged (the expiry cleans up after them). */
  private inOrder(key: string, operation: Effect.Effect<void, unknown>): void {
    const previous = this.pending.get(key)
    const fiber = this.env.fork(
      Effect.andThen(previous ? Fiber.await(previous) : Effect.void, operation).pipe(
        Effect.catchCause((cause) => Effect.logWarning("tidings presence: an update failed", cause)),
        Effect.ensuring(
          Effect.sync(() => {
            if (this.pending.get(key) === fiber) this.pending.delete(key)
          })
        )
      )
    )
    this.pending.set(key, fiber)
  }

  /** Renews this node; writes its members again if a sweep had removed them; removes silent nodes' members. */
  private tick(): Effect.Effect<void> {
    const now = this.env.now()
    return Effect.gen({ self: this }, function* () {
      const unknown = yield* this.env.store.heartbeat(this.env.node, now + this.expiryMs)
      if (unknown && this.local.size > 0) {
        this.generation++
        for (const [key, { channel, member }] of this.local) {
          const rule = this.rules.find((r) => r.matches(channel))
          if (rule) this.inOrder(key, this.writeJoin(rule, channel, member))
        }
      }
      const removed = yield* this.env.store.sweep(now)
      for (const { channel, member } of removed) {
        const rule = this.rules.find((r) => r.matches(channel))
        yield* this.announce(rule?.leave, member, channel, "leave").pipe(
          Effect.catchCause((cause) => Effect.logWarning("tidings presence: announcing a leave failed", cause))
        )
      }
    }).pipe(Effect.catchCause((cause) => Effect.logWarning("tidings presence: heartbeat or sweep failed", cause)))
  }
}
