/**
 * Encodes `event` frames once. The frame for an entry is assembled from already-encoded JSON pieces (the
 * stored data is JSON text), so fan-out to N sockets costs one string per (entry, protocol version), never a
 * JSON.stringify per recipient. Control frames are rare and go through JSON.stringify directly. The MessagePack
 * form of an event frame (encodeEventFrameMsgpack) is likewise built once per (entry, protocol version).
 *
 * The compact envelope (encodeCompactEventFrame, encodeCompactEventFrameMsgpack) is an array
 * `[alias, offset, event, data, time]`: the alias is the node's number for the channel (the same for every
 * subscriber on the node), so a compact frame is shared by all recipients too.
 */
import type { ServerFrame } from "./Frames.ts"
import * as MessagePack from "./MessagePack.ts"

export interface EventFrameParts {
  readonly channel: string
  readonly epoch: string
  readonly offset: number
  readonly time: number
}

/** The frame text up to the offset, for the channel and epoch of the previous call (replay encodes runs of one). */
let lastChannel = ""
let lastEpoch = ""
let lastHead = ""
/** `,"event":"<name>","data":` per event name (a protocol has a handful). */
const eventParts = new Map<string, string>()

/** `data` is JSON text already encoded for the recipient's protocol version. */
export const encodeEventFrame = (parts: EventFrameParts, event: string, data: string): string => {
  if (parts.channel !== lastChannel || parts.epoch !== lastEpoch || lastHead === "") {
    lastChannel = parts.channel
    lastEpoch = parts.epoch
    lastHead = `{"type":"event","channel":${JSON.stringify(parts.channel)},"epoch":${JSON.stringify(parts.epoch)},"offset":`
  }
  let eventPart = eventParts.get(event)
  if (eventPart === undefined) {
    eventPart = `,"event":${JSON.stringify(event)},"data":`
    if (eventParts.size < 1024) eventParts.set(event, eventPart)
  }
  return `${lastHead}${parts.offset}${eventPart}${data},"time":${parts.time}}`
}

/** `data` is the wire value for MessagePack (ProtocolCodec.eventData: Bytes fields as raw bytes). */
export const encodeEventFrameMsgpack = (parts: EventFrameParts, event: string, data: unknown): Uint8Array =>
  MessagePack.encode({
    type: "event",
    channel: parts.channel,
    epoch: parts.epoch,
    offset: parts.offset,
    event,
    data,
    time: parts.time
  })

/** `[alias,offset,"event",data,time]`; `data` is JSON text already encoded for the recipient's version. */
export const encodeCompactEventFrame = (alias: number, parts: EventFrameParts, event: string, data: string): string =>
  `[${alias},${parts.offset},${eventName(event)},${data},${parts.time}]`

/** The compact envelope in MessagePack: the same array. */
export const encodeCompactEventFrameMsgpack = (
  alias: number,
  parts: EventFrameParts,
  event: string,
  data: unknown
): Uint8Array => MessagePack.encode([alias, parts.offset, event, data, parts.time])

/** An event name as JSON text, cached (a protocol has a handful). */
const eventNames = new Map<string, string>()
const eventName = (event: string): string => {
  let text = eventNames.get(event)
  if (text === undefined) {
    text = JSON.stringify(event)
    if (eventNames.size < 1024) eventNames.set(event, text)
  }
  return text
}

export const encodeFrame = (frame: ServerFrame): string => JSON.stringify(frame)

/** Frames travel one or more per WebSocket message, separated by newlines (JSON text never contains one). */
export const FRAME_SEPARATOR = "\n"

export const splitMessage = (message: string): ReadonlyArray<string> =>
  message.includes(FRAME_SEPARATOR) ? message.split(FRAME_SEPARATOR) : [message]
