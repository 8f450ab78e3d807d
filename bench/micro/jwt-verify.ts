/**
 * Micro-benchmark of token verification at connection setup: CPU per HS256 token for jose's `jwtVerify`
 * (WebCrypto, one token after another, as a server sees them) and for the server's verifier (SharedSecretTokens.ts:
 * fast-jwt, node:crypto). Run: node --import tsx bench/micro/jwt-verify.ts [tokens, default 20,000]
 */
import { jwtVerify, SignJWT } from "jose"
import * as SharedSecretTokens from "../../src/server/auth/SharedSecretTokens.ts"

const count = Number(process.argv[2] ?? 20_000)
const secret = "micro-bench-secret-0123456789abcdef"
const bytes = new TextEncoder().encode(secret)
const tokens = await Promise.all(
  Array.from({ length: count }, (_, i) =>
    new SignJWT({ sub: `user-${i}`, channels: ["bench:*"] }).setProtectedHeader({ alg: "HS256" }).sign(bytes)
  )
)
const key = await crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"])
const verify = SharedSecretTokens.verifier(secret)

const measure = async (label: string, run: (token: string) => unknown) => {
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (const token of tokens) await run(token)
  const used = process.cpuUsage(cpu)
  const wall = performance.now() - started
  const perToken = (n: number) => (n / count).toFixed(1)
  console.log(`${label}: ${perToken((used.user + used.system) / 1)} µs CPU, ${perToken(wall * 1000)} µs wall per token`)
}

for (let round = 1; round <= 2; round++) {
  console.log(`round ${round}, ${count.toLocaleString("en-US")} tokens`)
  await measure("  jose jwtVerify (WebCrypto HMAC)", (token) => jwtVerify(token, key, { algorithms: ["HS256"] }))
  await measure("  fast-jwt (SharedSecretTokens)   ", (token) => {
    if (!verify(token).ok) throw new Error("token refused")
  })
}
