/**
 * The bounded building blocks every version of the agent protocol is made of: ids, texts, percentages,
 * screenshots, JSON payloads, and the limits behind them.
 *
 * Each limit is a named constant so that docs, servers and clients in other languages can quote it. A field that
 * changes meaning between versions (progress as a fraction in v1 and a percentage in v2, a screenshot as a data
 * URL in v1 and an object in v2) has one schema per meaning here; which version uses which is decided in
 * v1/ and v2/. Every schema is service-free and plain JSON on the wire: strings, finite numbers, booleans,
 * arrays and objects only.
 */
import { Schema } from "effect"

// ---- limits ----------------------------------------------------------------------------------------------------

/** Longest id (run, execution, step, message, session, task, user), in UTF-16 code units. */
export const MAX_ID_LENGTH = 128
/** Longest short label: a title, an action name, a stage, an error code. */
export const MAX_LABEL_LENGTH = 256
/** Longest one-paragraph text: a status detail, a notification or error message, a question. */
export const MAX_MESSAGE_LENGTH = 4_096
/** Longest free text: a query, a step explanation, a step result, one streamed message chunk, an answer. */
export const MAX_TEXT_LENGTH = 65_536
/** Longest URL. */
export const MAX_URL_LENGTH = 8_192
/** Longest base64 screenshot payload: 5 MiB of base64 (about 3.75 MB of image). */
export const MAX_SCREENSHOT_BASE64_LENGTH = 5 * 1024 * 1024
/** Highest step number and step count. */
export const MAX_STEPS = 100_000

// ---- ids and texts ---------------------------------------------------------------------------------------------

const boundedString = (min: number, max: number) =>
  Schema.String.check(Schema.isMinLength(min), Schema.isMaxLength(max))

/** An opaque id: 1 to 128 characters, no other constraint (uuids, ulids, database keys all fit). */
export const Id = boundedString(1, MAX_ID_LENGTH).annotate({ description: "Opaque id" })
export const RunId = Id.annotate({ description: "Id of an agent run, as returned by `start`" })
export const ExecutionId = Id.annotate({ description: "Id of one execution of a run" })
export const StepId = Id.annotate({ description: "Id of a step within an execution" })
export const MessageId = Id.annotate({ description: "Id of a streamed message; every chunk of it carries the same id" })
export const SessionId = Id.annotate({ description: "Id of a browser session" })
export const TaskId = Id.annotate({ description: "Id of a long-running task" })
export const UserId = Id.annotate({ description: "Id of a user" })

export const Label = boundedString(0, MAX_LABEL_LENGTH)
export const NonEmptyLabel = boundedString(1, MAX_LABEL_LENGTH)
export const Message = boundedString(0, MAX_MESSAGE_LENGTH)
export const Text = boundedString(0, MAX_TEXT_LENGTH)
export const Url = boundedString(1, MAX_URL_LENGTH).annotate({
  description: "An absolute URL, as the browser shows it"
})

/** A 1-based step number. */
export const StepNumber = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_STEPS }))
/** A step count or a current-step counter, where 0 means "no step yet". */
export const StepCount = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: MAX_STEPS }))
export const Count = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }))

// ---- progress --------------------------------------------------------------------------------------------------

/** v1 progress: a fraction from 0 to 1. */
export const Fraction = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })).annotate({
  description: "Progress as a fraction from 0 (nothing done) to 1 (done)"
})
/** v2 progress: a percentage from 0 to 100, fractional values allowed. */
export const Percent = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 100 })).annotate({
  description: "Progress in percent from 0 (nothing done) to 100 (done)"
})

// ---- screenshots -----------------------------------------------------------------------------------------------

/** The image types a screenshot may have. */
export const ScreenshotMime = Schema.Literals(["image/png", "image/jpeg", "image/webp"])
export type ScreenshotMime = typeof ScreenshotMime.Type

/**
 * Padded standard base64 (RFC 4648 §4): alphabet characters, a length that is a multiple of 4, `=` only as the
 * last one or two characters.
 *
 * The obvious regular expression, `^(?:[A-Za-z0-9+/]{4})*(?:…=|…==)?$`, overflows V8's regexp stack on a
 * screenshot of a few MB, so validation is a single-character-class regexp plus a length check. That pattern is
 * also what the JSON Schema shows; the strict one only guides generated test values.
 */
const base64Alphabet = /^[A-Za-z0-9+/]*={0,2}$/
const strictBase64 = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
const isBase64Text = (text: string): boolean => text.length % 4 === 0 && base64Alphabet.test(text)

const dataUrlPrefixes = ["data:image/png;base64,", "data:image/jpeg;base64,", "data:image/webp;base64,"]

/** Standard base64 (RFC 4648 §4, padded), at most {@link MAX_SCREENSHOT_BASE64_LENGTH} characters. */
export const Base64 = Schema.String.check(
  Schema.isMaxLength(MAX_SCREENSHOT_BASE64_LENGTH),
  Schema.makeFilter(isBase64Text, {
    expected: "padded standard base64",
    toJsonSchema: () => ({ pattern: base64Alphabet.source }),
    arbitraryConstraint: { patterns: [{ source: `^${strictBase64}$`, flags: "" }] }
  })
).annotate({ description: "Padded standard base64; its length is a multiple of 4" })

/** v2 screenshot: `{ "mime": "image/png", "data": "<base64>" }`. */
export const Screenshot = Schema.Struct({ mime: ScreenshotMime, data: Base64 }).annotate({
  identifier: "AgentScreenshot",
  description: "An image: its MIME type and its bytes in base64"
})
export type Screenshot = typeof Screenshot.Type

const longestDataUrlPrefix = Math.max(...dataUrlPrefixes.map((prefix) => prefix.length))

const isScreenshotDataUrl = (text: string): boolean => {
  const prefix = dataUrlPrefixes.find((candidate) => text.startsWith(candidate))
  return prefix !== undefined && isBase64Text(text.slice(prefix.length))
}

/** v1 screenshot: a `data:image/<png|jpeg|webp>;base64,<data>` URL. */
export const ScreenshotDataUrl = Schema.String.check(
  Schema.isMaxLength(MAX_SCREENSHOT_BASE64_LENGTH + longestDataUrlPrefix),
  Schema.makeFilter(isScreenshotDataUrl, {
    expected: "a data:image/(png|jpeg|webp);base64 URL",
    toJsonSchema: () => ({ pattern: `^data:image/(?:png|jpeg|webp);base64,${base64Alphabet.source.slice(1)}` }),
    arbitraryConstraint: {
      patterns: [{ source: `^data:image/(?:png|jpeg|webp);base64,${strictBase64}$`, flags: "" }]
    }
  })
).annotate({ description: "An image as a base64 data URL" })

/** The v1 data URL of a v2 screenshot. */
export const screenshotToDataUrl = (screenshot: Screenshot): string =>
  `data:${screenshot.mime};base64,${screenshot.data}`

// ---- free-form JSON --------------------------------------------------------------------------------------------

/**
 * Any JSON value (finite numbers only). Its size is bounded by the server's maximum frame size, not here, so
 * that decoding does not serialize it a second time.
 */
export const Json = Schema.Json
/** A JSON object: string keys, JSON values. */
export const JsonObject = Schema.JsonObject

// ---- enumerations shared by both versions ----------------------------------------------------------------------

export const Role = Schema.Literals(["user", "assistant", "system", "tool"]).annotate({
  description: "Who wrote a message"
})

export const NotificationLevel = Schema.Literals(["info", "success", "warning", "error"])

export const StepStatus = Schema.Literals(["pending", "running", "completed", "failed", "skipped"])
