/**
 * Presence on one node (the memory transport): a subscription to a channel with presence joins it and is
 * announced with the rule's event; the `presence` frame, the typed client's `presence()` and
 * `GET /v1/channels/:channel/presence` list the members with user, session and the token's `info`; unsubscribing
 * and disconnecting leave (announced once); a subscribe undone at once leaves no member behind; a channel without
 * presence or one the token may not read is refused.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Client from "../../src/client/node.ts"
import { TidingsServer } from "../../src/server/Server.ts"
import { eventually } from "../support/until.ts"
import { ChatProtocol } from "./support/chatProtocol.ts"
import { connectRaw, type Frame, type RawClient } from "./support/rawClient.ts"
import { chatPresence, sign, testServerLayer } from "./support/testServer.ts"

const unique = (prefix: string) => `${prefix}:${Math.random().toString(36).slice(2, 10)}`

const connect = (url: string, claims: Record<string, unknown>) =>
  Effect.promise(async () => {
    const client = await connectRaw(url, { protocols: ["tidings.chat.v2.json"] })
    client.send({ type: "authenticate", token: await sign(claims) })
    await client.next((f) => f.type === "welcome")
    return client
  })

const subscribe = (client: RawClient, channel: string) =>
  Effect.promise(() => {
    client.send({ type: "subscribe", channel })
    return client.next((f) => f.type === "subscribed" && f.channel === channel)
  })

let ids = 0
const query = (client: RawClient, channel: string) =>
  Effect.promise(() => {
    const id = `p${++ids}`
    client.send({ type: "presence", id, channel })
    return client.next((f) => (f.type === "presence" || f.type === "error") && f.id === id)
  })

const said = (client: RawClient, channel: string) =>
  client.events(channel).map((e) => (e.data as { body: string }).body)

const membersOf = (frame: Frame) => (frame.members as Array<{ user: string }>).map((m) => m.user).sort()

const httpPresence = (port: number, channel: string, token?: string) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/channels/${encodeURIComponent(channel)}/presence`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` }
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

layer(testServerLayer({ presence: chatPresence("room:*") }), { excludeTestServices: true })(
  "presence, one node",
  (it) => {
    it.effect("join and leave are announced once; the query lists who is there, with the token's info", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        const ann = yield* connect(server.url, { sub: "ann", channels: ["room:*"], info: { name: "Ann" } })
        const bob = yield* connect(server.url, { sub: "bob", channels: ["room:*"] })
        yield* subscribe(ann, channel)
        yield* eventually("ann's join", () => said(ann, channel).length === 1)
        expect(said(ann, channel)[0]).toMatch(/^joined /)
        yield* subscribe(bob, channel)
        yield* eventually("bob's join", () => said(ann, channel).length === 2)

        const listed = yield* query(ann, channel)
        expect(listed.type).toBe("presence")
        expect(membersOf(listed)).toEqual(["ann", "bob"])
        const annMember = (listed.members as Array<Record<string, unknown>>).find((m) => m.user === "ann")
        expect(annMember).toMatchObject({ info: { name: "Ann" } })
        expect(typeof annMember?.session).toBe("string")

        // over HTTP, with the same rights
        const token = yield* Effect.promise(() => sign({ sub: "carol", channels: ["room:*"] }))
        const http = yield* httpPresence(server.port, channel, token)
        expect(http.status).toBe(200)
        expect((http.body.members as Array<{ user: string }>).map((m) => m.user).sort()).toEqual(["ann", "bob"])
        expect((yield* httpPresence(server.port, channel)).status).toBe(401)
        const outsider = yield* Effect.promise(() => sign({ sub: "eve", channels: ["other:*"] }))
        expect((yield* httpPresence(server.port, channel, outsider)).status).toBe(403)
        expect((yield* httpPresence(server.port, "broadcast", token)).status).toBe(404)

        // unsubscribing leaves, announced once
        bob.send({ type: "unsubscribe", channel })
        yield* eventually("bob's leave", () => said(ann, channel).length === 3)
        expect(said(ann, channel)[2]).toMatch(/^left /)
        expect(membersOf(yield* query(ann, channel))).toEqual(["ann"])

        // disconnecting leaves too
        const dan = yield* connect(server.url, { sub: "dan", channels: ["room:*"] })
        yield* subscribe(dan, channel)
        yield* eventually("dan's join", () => said(ann, channel).length === 4)
        dan.close()
        yield* eventually("dan's leave", () => said(ann, channel).length === 5)
        expect(membersOf(yield* query(ann, channel))).toEqual(["ann"])
        yield* Effect.sleep("100 millis")
        expect(said(ann, channel).filter((b) => b.startsWith("left"))).toHaveLength(2)
        ann.close()
        bob.close()
      })
    )

    it.effect("a subscribe undone at once leaves no member; refused queries say why", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        const ann = yield* connect(server.url, { sub: "ann", channels: ["room:*", "plain:*"] })
        for (let i = 0; i < 20; i++) {
          ann.send({ type: "subscribe", channel })
          ann.send({ type: "unsubscribe", channel })
        }
        yield* Effect.promise(() =>
          ann.next(
            (f) => f.type === "unsubscribed" && ann.frames.filter((g) => g.type === "unsubscribed").length === 20
          )
        )
        yield* Effect.sleep("200 millis")
        expect(membersOf(yield* query(ann, channel))).toEqual([])

        const noPresence = yield* query(ann, unique("plain"))
        expect(noPresence).toMatchObject({ type: "error", code: "forbidden" })
        expect(String(noPresence.message)).toContain("no presence")
        const notReadable = yield* query(ann, unique("secret"))
        expect(notReadable).toMatchObject({ type: "error", code: "forbidden" })
        ann.close()
      })
    )

    it.effect("the typed client asks with presence()", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        const token = yield* Effect.promise(() => sign({ sub: "ann", channels: ["room:*"], info: { name: "Ann" } }))
        const client = Client.make(ChatProtocol, { url: server.url, version: 2, token: () => token })
        const subscription = client.subscribe(channel)
        yield* Effect.promise(() => subscription.ready())
        const members = yield* Effect.promise(async () => {
          for (let i = 0; i < 50; i++) {
            const found = await client.presence(channel)
            if (found.length > 0) return found
            await new Promise((r) => setTimeout(r, 20))
          }
          return []
        })
        expect(members).toHaveLength(1)
        expect(members[0]).toMatchObject({ user: "ann", info: { name: "Ann" } })
        const refused = yield* Effect.promise(() =>
          client.presence("broadcast").then(
            () => undefined,
            (e: unknown) => e
          )
        )
        expect(refused).toMatchObject({ _tag: "CommandRejected", code: "forbidden" })
        client.close()
      })
    )
  }
)
