/**
 * The transport's health, kept up to date in the background so that `/readyz` answers at once, whatever the broker
 * is doing (stopped, blackholed, slow): a probe (`transport.healthy`) every `intervalMs`, one at a time; a probe
 * still unanswered after `timeoutMs` makes the transport unhealthy from that moment, with the reason, and the
 * first probe that answers makes it healthy again.
 */
import { Effect, Schedule, type Scope } from "effect"
import type { TransportShape } from "../../transports/Transport.ts"

export interface TransportHealth {
  /** The transport's health now, with the reason when it is not. */
  readonly current: () => { readonly ok: boolean; readonly reason?: string }
}

export interface TransportHealthOptions {
  /** How often to probe (default 250 ms). */
  readonly intervalMs?: number
  /** How long a probe may go unanswered before the transport counts as unreachable (default 750 ms). */
  readonly timeoutMs?: number
}

export const make = (
  transport: TransportShape,
  options: TransportHealthOptions = {}
): Effect.Effect<TransportHealth, never, Scope.Scope> =>
  Effect.gen(function* () {
    const intervalMs = options.intervalMs ?? 250
    const timeoutMs = options.timeoutMs ?? 750
    let healthy = yield* transport.healthy
    /** When the probe in flight began; undefined when none is. */
    let probing: number | undefined
    const probe = Effect.suspend(() => {
      if (probing !== undefined) return Effect.void
      probing = Date.now()
      return transport.healthy.pipe(
        Effect.catchCause(() => Effect.succeed(false)),
        Effect.tap((ok) =>
          Effect.sync(() => {
            healthy = ok
            probing = undefined
          })
        )
      )
    })
    // not awaited by the schedule: a probe that hangs must not stop the clock that judges it
    yield* Effect.forkScoped(Effect.repeat(Effect.forkScoped(probe), Schedule.spaced(intervalMs)))
    return {
      current: () => {
        const waited = probing === undefined ? 0 : Date.now() - probing
        if (waited > timeoutMs) return { ok: false, reason: `the transport did not answer a probe for ${waited} ms` }
        return healthy ? { ok: true } : { ok: false, reason: "the transport is unreachable" }
      }
    }
  })
