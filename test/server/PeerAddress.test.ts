/**
 * peerAddress: the upgrade reads the client's IP without leaving Node's cached address object on the socket for
 * the connection's lifetime (a per-connection memory cost), and the socket still answers remoteAddress after.
 */

import type { AddressInfo } from "node:net"
import { createConnection, createServer, type Socket } from "node:net"
import { describe, expect, it } from "vitest"
import { peerAddress } from "../../src/server/connection/Upgrade.ts"

describe("peerAddress", () => {
  it("returns the peer's IP and lets go of the address object Node cached", async () => {
    const server = createServer()
    const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve))
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const client = createConnection((server.address() as AddressInfo).port, "127.0.0.1")
    const socket = await accepted
    try {
      expect(peerAddress(socket)).toBe("127.0.0.1")
      expect((socket as unknown as { _peername?: unknown })._peername).toBeUndefined()
      expect(socket.remoteAddress).toBe("127.0.0.1")
      expect(socket.remotePort).toBe(client.localPort)
    } finally {
      client.destroy()
      socket.destroy()
      server.close()
    }
  })
})
