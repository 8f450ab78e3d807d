/**
 * The append path's publisher (src/transports/nats/Publisher.ts) when a stream elects a new leader: `failStale`
 * fails what went to the old leader at once, and what was sent just before the election once it is as old,
 * unless answered meanwhile. Against a fake connection that records publishes and delivers acks on demand; the
 * election itself, against a real cluster, is test/cluster/NatsCluster.test.ts's and NatsPartition.test.ts's.
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node"
import { describe, expect, it } from "vitest"
import { Publisher } from "../../src/transports/nats/Publisher.ts"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A connection that keeps each publish's reply subject and lets the test answer it with a stream ack. */
const fakeConnection = () => {
  let deliver: ((error: Error | null, message: Msg) => void) | undefined
  const replies: Array<string> = []
  const nc = {
    subscribe: (_subject: string, options: { callback: (error: Error | null, message: Msg) => void }) => {
      deliver = options.callback
      return { unsubscribe: () => {} }
    },
    publish: (_subject: string, _data: Uint8Array, options: { reply: string }) => {
      replies.push(options.reply)
    },
    isClosed: () => false
  } as unknown as NatsConnection
  const ack = (k: number, seq: number) =>
    deliver?.(null, {
      subject: replies[k]!,
      data: new Uint8Array([1]),
      headers: undefined,
      json: () => ({ stream: "S", seq })
    } as unknown as Msg)
  return { nc, ack }
}

const settled = (promise: Promise<unknown>) => {
  const state = { outcome: "pending" as "pending" | "acked" | "failed", error: "" }
  promise.then(
    () => {
      state.outcome = "acked"
    },
    (error: Error) => {
      state.outcome = "failed"
      state.error = `${error.name}: ${error.message}`
    }
  )
  return state
}

describe("NATS publisher around a leader election", () => {
  it("fails a publish sent just before the election once it is 500 ms old; one answered meanwhile, or sent after, is not", async () => {
    const { nc, ack } = fakeConnection()
    const publisher = new Publisher(nc, 5000)
    try {
      const toOldLeader = settled(publisher.publish("s", new Uint8Array()))
      const answeredLate = settled(publisher.publish("s", new Uint8Array()))
      await sleep(100)
      publisher.failStale(500)
      // both were sent 100 ms before: too recent to tell, left waiting
      await sleep(20)
      expect([toOldLeader.outcome, answeredLate.outcome]).toEqual(["pending", "pending"])
      const afterElection = settled(publisher.publish("s", new Uint8Array()))
      ack(1, 7)
      await sleep(900)
      expect(toOldLeader).toEqual({
        outcome: "failed",
        error: "TimeoutError: no publish ack before the stream elected a new leader"
      })
      expect(answeredLate.outcome).toBe("acked")
      expect(afterElection.outcome).toBe("pending")
      ack(2, 8)
      await sleep(10)
      expect(afterElection.outcome).toBe("acked")
    } finally {
      publisher.close()
    }
  })

  it("fails at once what was sent more than 500 ms before the election", async () => {
    const { nc } = fakeConnection()
    const publisher = new Publisher(nc, 5000)
    try {
      const old = settled(publisher.publish("s", new Uint8Array()))
      await sleep(600)
      publisher.failStale(500)
      await sleep(10)
      expect(old.outcome).toBe("failed")
    } finally {
      publisher.close()
    }
  })
})
