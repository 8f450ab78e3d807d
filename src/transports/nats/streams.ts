/**
 * The two streams the transport relies on, and how it creates or verifies them: the channel-log stream (one
 * subject per channel) and the KV-compatible cursor bucket (Cursors.ts).
 *
 * Creating is idempotent and race-safe (two nodes starting together both succeed). An existing stream is
 * verified: its subjects must include the transport's, and its limits (per-subject message count, age,
 * duplicate window) are updated to the configured ones — so every node of a deployment must use the same
 * settings. Storage type and replica count cannot change after creation and are left as they are.
 */
import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo
} from "@nats-io/jetstream"
import { nanos } from "@nats-io/transport-node"
import { isStreamNotFound } from "./Link.ts"

export type StreamSpec = Partial<StreamConfig> & { readonly name: string; readonly subjects: Array<string> }

export interface StorageSettings {
  readonly storage: "file" | "memory"
  readonly replicas: number
}

export const channelStreamSpec = (
  settings: StorageSettings & {
    readonly name: string
    readonly prefix: string
    readonly maxEntries: number
    readonly maxAgeMs: number
    readonly duplicateWindowMs: number
  }
): StreamSpec => ({
  name: settings.name,
  description: "tidings channel logs: one subject per channel, position headers on every message",
  subjects: [`${settings.prefix}.*`],
  retention: RetentionPolicy.Limits,
  discard: DiscardPolicy.Old,
  storage: settings.storage === "memory" ? StorageType.Memory : StorageType.File,
  num_replicas: settings.replicas,
  max_msgs_per_subject: settings.maxEntries,
  max_age: nanos(settings.maxAgeMs),
  // The duplicate window may not exceed the maximum age.
  duplicate_window: nanos(Math.min(settings.duplicateWindowMs, settings.maxAgeMs)),
  allow_direct: true
})

export const cursorStreamSpec = (
  settings: StorageSettings & { readonly name: string; readonly subjects: string; readonly ttlMs: number }
): StreamSpec => ({
  name: settings.name,
  description: "tidings session cursors (KV bucket)",
  subjects: [settings.subjects],
  retention: RetentionPolicy.Limits,
  discard: DiscardPolicy.New,
  storage: settings.storage === "memory" ? StorageType.Memory : StorageType.File,
  num_replicas: settings.replicas,
  max_msgs_per_subject: 1,
  max_age: nanos(settings.ttlMs),
  duplicate_window: nanos(Math.min(2 * 60 * 1000, settings.ttlMs)),
  allow_rollup_hdrs: true,
  deny_delete: true,
  allow_direct: true
})

/**
 * The presence bucket (nats/Presence.ts): a KV-compatible stream, one message per key, whose messages may be
 * deleted one by one (a removal is a delete of the member's message, which exactly one caller wins). Entries live
 * at most `maxAgeMs` (garbage from nodes gone for good; a node rewrites its members long before that).
 */
export const presenceStreamSpec = (
  settings: StorageSettings & { readonly name: string; readonly subjects: string; readonly maxAgeMs: number }
): StreamSpec => ({
  name: settings.name,
  description: "tidings presence (KV bucket)",
  subjects: [settings.subjects],
  retention: RetentionPolicy.Limits,
  discard: DiscardPolicy.Old,
  storage: settings.storage === "memory" ? StorageType.Memory : StorageType.File,
  num_replicas: settings.replicas,
  max_msgs_per_subject: 1,
  max_age: nanos(settings.maxAgeMs),
  allow_rollup_hdrs: true,
  deny_delete: false,
  allow_direct: true
})

/**
 * Creates the stream if missing, otherwise (with `verify`, the default) brings its subjects and limits to
 * `spec`. Returns its info.
 */
export const ensureStream = async (
  jsm: JetStreamManager,
  spec: StreamSpec,
  options: { readonly verify?: boolean } = {}
): Promise<StreamInfo> => {
  let info: StreamInfo
  try {
    info = await jsm.streams.info(spec.name)
  } catch (error) {
    if (!isStreamNotFound(error)) throw error
    try {
      return await jsm.streams.add(spec)
    } catch (addError) {
      // Another node created it meanwhile (possibly with other limits): verify that one instead.
      if (!(addError instanceof Error && /already in use/.test(addError.message))) throw addError
      info = await jsm.streams.info(spec.name)
    }
  }
  if (options.verify === false) return info
  const config = info.config
  const subjects = [...new Set([...(config.subjects ?? []), ...spec.subjects])]
  const differs =
    subjects.length !== (config.subjects ?? []).length ||
    config.max_msgs_per_subject !== spec.max_msgs_per_subject ||
    config.max_age !== spec.max_age ||
    config.duplicate_window !== spec.duplicate_window
  if (!differs) return info
  return jsm.streams.update(spec.name, {
    ...config,
    subjects,
    max_msgs_per_subject: spec.max_msgs_per_subject ?? config.max_msgs_per_subject,
    max_age: spec.max_age ?? config.max_age,
    duplicate_window: spec.duplicate_window ?? config.duplicate_window
  })
}
