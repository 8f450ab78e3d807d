/**
 * Reads the numbers the load generator needs from a delivery without a JSON.parse per delivery: the Tick fields
 * (s, i, t, m) of the bench protocol's data object, and the `offset` of a tidings event frame. The layouts are
 * fixed (Tick's field order is the schema's; the event frame is encodeEventFrame's), and a scan that finds
 * anything unexpected returns false so the caller falls back to JSON.parse. The same scanner reads all three
 * servers' deliveries, so none gets a cheaper client than another. Results go to the exported `scanned` record
 * (no allocation per delivery).
 */

export const scanned = { s: 0, i: 0, t: 0, m: 0, offset: 0 }

let cursor = 0

const readInt = (text: string, at: number): number => {
  let pos = at
  let c = text.charCodeAt(pos)
  const negative = c === 45
  if (negative) c = text.charCodeAt(++pos)
  let n = 0
  const start = pos
  while (c >= 48 && c <= 57) {
    n = n * 10 + (c - 48)
    c = text.charCodeAt(++pos)
  }
  cursor = pos === start ? -1 : pos
  return negative ? -n : n
}

const readNumber = (text: string, at: number): number => {
  const whole = readInt(text, at)
  if (cursor < 0) return Number.NaN
  let pos = cursor
  let c = text.charCodeAt(pos)
  if (c !== 46) {
    if (c === 101 || c === 69) return scanSlow(text, at)
    return whole
  }
  let fraction = 0
  let scale = 1
  c = text.charCodeAt(++pos)
  while (c >= 48 && c <= 57) {
    fraction = fraction * 10 + (c - 48)
    scale *= 10
    c = text.charCodeAt(++pos)
  }
  if (c === 101 || c === 69) return scanSlow(text, at)
  cursor = pos
  return whole < 0 ? whole - fraction / scale : whole + fraction / scale
}

const scanSlow = (text: string, at: number): number => {
  let pos = at
  while (pos < text.length && ",}]".indexOf(text[pos]!) < 0) pos++
  cursor = pos
  return Number(text.slice(at, pos))
}

const expect = (text: string, at: number, literal: string): boolean => text.startsWith(literal, at)

/** Reads a Tick object whose "{" is at `at`: `{"s":1,"i":2,"t":3.4,"m":1,"p":"…"}`. */
export const scanTick = (text: string, at: number): boolean => {
  if (!expect(text, at, '{"s":')) return false
  scanned.s = readInt(text, at + 5)
  if (cursor < 0 || !expect(text, cursor, ',"i":')) return false
  scanned.i = readInt(text, cursor + 5)
  if (cursor < 0 || !expect(text, cursor, ',"t":')) return false
  scanned.t = readNumber(text, cursor + 5)
  if (cursor < 0 || !expect(text, cursor, ',"m":')) return false
  scanned.m = readInt(text, cursor + 5)
  return cursor >= 0
}

const EVENT_PREFIX = '{"type":"event",'

/** Whether a frame is a tidings event frame (cheap prefix test). */
export const isEventFrame = (frame: string): boolean => frame.startsWith(EVENT_PREFIX)

/** Reads `offset` and the Tick in `data` of a tidings event frame. */
export const scanEventFrame = (frame: string): boolean => {
  const at = frame.indexOf('"offset":', EVENT_PREFIX.length)
  if (at < 0) return false
  scanned.offset = readInt(frame, at + 9)
  if (cursor < 0) return false
  const data = frame.indexOf('"data":', cursor)
  return data >= 0 && scanTick(frame, data + 7)
}

/** Fallback: the same fields from a parsed Tick. */
export const fromParsed = (data: { s?: unknown; i?: unknown; t?: unknown; m?: unknown }): boolean => {
  if (typeof data.s !== "number" || typeof data.i !== "number" || typeof data.t !== "number") return false
  scanned.s = data.s
  scanned.i = data.i
  scanned.t = data.t
  scanned.m = data.m === 1 ? 1 : 0
  return true
}
