/**
 * Generates small PNG "screenshots" for the simulated agent: a solid-colour image with a band whose position
 * depends on the step, so consecutive steps look different. Plain zlib + CRC32; no image library.
 */
import { deflateSync } from "node:zlib"

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

const crc32 = (bytes: Uint8Array): number => {
  let c = 0xffffffff
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

const chunk = (type: string, data: Buffer): Buffer => {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, "ascii"), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}

/** A `width`×`height` RGB PNG, base64-encoded, with a band at a step-dependent position. */
export const screenshotPng = (step: number, width = 160, height = 100): string => {
  const hue = (step * 47) % 360
  const [r, g, b] = [
    Math.round(128 + 100 * Math.cos((hue * Math.PI) / 180)),
    90 + ((step * 30) % 120),
    200 - ((step * 25) % 150)
  ]
  const band = (step * 17) % height
  const rows = Buffer.alloc((width * 3 + 1) * height)
  for (let y = 0; y < height; y++) {
    const rowStart = y * (width * 3 + 1)
    rows[rowStart] = 0
    const inBand = Math.abs(y - band) < 8
    for (let x = 0; x < width; x++) {
      const i = rowStart + 1 + x * 3
      rows[i] = inBand ? 255 : r
      rows[i + 1] = inBand ? 255 : g
      rows[i + 2] = inBand ? 255 : b
    }
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bit depth
  header[9] = 2 // RGB
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0))
  ])
  return png.toString("base64")
}
