/**
 * Encodes `event` frames once. The frame for an entry is assembled from already-encoded JSON pieces (the
 * stored data is JSON text), so fan-out to N sockets costs one string per (entry, protocol version), never a
 * JSON.stringify per recipient. Control frames are rare and go through JSON.stringify directly.
 */
import type { ServerFrame } from "./Frames.ts"

export interface EventFrameParts {
  readonly channel: string
  readonly epoch: string
  readonly offset: number
  readonly time: number
}

/** `data` is JSON text already encoded for the recipient's protocol version. */
export const encodeEventFrame = (parts: EventFrameParts, event: string, data: string): string =>
  `{"type":"event","channel":${JSON.stringify(parts.channel)},"epoch":${JSON.stringify(parts.epoch)},"offset":${parts.offset},"event":${JSON.stringify(event)},"data":${data},"time":${parts.time}}`

export const encodeFrame = (frame: ServerFrame): string => JSON.stringify(frame)

/** Frames travel one or more per WebSocket message, separated by newlines (JSON text never contains one). */
export const FRAME_SEPARATOR = "\n"

export const splitMessage = (message: string): ReadonlyArray<string> =>
  message.includes(FRAME_SEPARATOR) ? message.split(FRAME_SEPARATOR) : [message]
