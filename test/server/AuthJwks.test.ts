/**
 * Authentication against a JWKS URL (asymmetric tokens, verified by jose): a token signed by the published key is
 * accepted at the upgrade with its claims; one signed by another key, an expired one and an HS256 one are refused
 * with HTTP 401 and a reason. The JWKS is served by a local HTTP server.
 */
import { createServer, type Server as HttpServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Context, Effect, Layer } from "effect"
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { ChatProtocol } from "./support/chatProtocol.ts"
import { connectRaw } from "./support/rawClient.ts"
import { chatHandlers } from "./support/testServer.ts"

let jwks: HttpServer
let jwksUrl = ""
let signWith: (claims: JWTPayload, options?: { other?: boolean; expired?: boolean }) => Promise<string>

beforeAll(async () => {
  const published = await generateKeyPair("ES256")
  const other = await generateKeyPair("ES256")
  const jwk = { ...(await exportJWK(published.publicKey)), kid: "k1", alg: "ES256", use: "sig" }
  jwks = createServer((_req, res) =>
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }))
  )
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve))
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`
  signWith = (claims, options = {}) => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "k1" })
    if (options.expired) jwt.setExpirationTime(Math.floor(Date.now() / 1000) - 10)
    return jwt.sign(options.other ? other.privateKey : published.privateKey)
  }
})
afterAll(() => new Promise<void>((resolve) => jwks.close(() => resolve())))

const status = (url: string, token: string) =>
  connectRaw(url, { headers: { authorization: `Bearer ${token}` } }).then(
    async (client) => {
      const welcome = await client.next((f) => f.type === "welcome")
      client.close()
      return { status: 101, user: welcome.user, body: "" }
    },
    (error: { status: number; body: string }) => ({ status: error.status, user: undefined, body: error.body })
  )

describe("auth with a JWKS URL", () => {
  it("accepts tokens signed by the published key and refuses the others with a reason", async () => {
    const layer = Server.layer({
      protocol: ChatProtocol,
      handlers: chatHandlers,
      port: 0,
      auth: { jwksUrl }
    }).pipe(Layer.provide(Memory.layer()))
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const server = Context.get(yield* Layer.build(layer), Server.TidingsServer)
          const check = (token: Promise<string>) => Effect.promise(() => token.then((t) => status(server.url, t)))
          expect(yield* check(signWith({ sub: "alice" }))).toMatchObject({ status: 101, user: "alice" })
          const forged = yield* check(signWith({ sub: "mallory" }, { other: true }))
          expect(forged.status).toBe(401)
          expect(JSON.parse(forged.body)).toMatchObject({ error: "invalid_token" })
          const expired = yield* check(signWith({ sub: "alice" }, { expired: true }))
          expect(expired.status).toBe(401)
          expect(JSON.parse(expired.body)).toMatchObject({ error: "expired_token" })
          const hs256 = yield* check(
            new SignJWT({ sub: "alice" })
              .setProtectedHeader({ alg: "HS256" })
              .sign(new TextEncoder().encode("s".repeat(32)))
          )
          expect(hs256.status).toBe(401)
          expect(JSON.parse(hs256.body)).toMatchObject({ error: "invalid_token" })
        })
      )
    )
  })
})
