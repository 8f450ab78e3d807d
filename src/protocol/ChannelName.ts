/**
 * Channel names: 1 to 256 characters, no whitespace or control characters (names appear in logs, metrics and
 * URLs). The same rule for subscribing, publishing in process and publishing over HTTP.
 */
import { Schema } from "effect"

const hasSpaceOrControl = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f) return true
  }
  return false
}

/** Why `channel` is not a valid channel name, or undefined when it is. */
export const channelNameProblem = (channel: string): string | undefined =>
  channel.length === 0 || channel.length > 256
    ? "channel names are 1 to 256 characters"
    : hasSpaceOrControl(channel)
      ? "channel names may not contain whitespace or control characters"
      : undefined

export const ChannelName = Schema.String.check(
  Schema.isMinLength(1),
  Schema.isMaxLength(256),
  Schema.isPattern(/^\S*$/, { message: "channel names may not contain whitespace" }),
  Schema.makeFilter((s: string) => channelNameProblem(s) ?? true)
).annotate({
  identifier: "ChannelName",
  description: "A channel name such as run:123 or user:alice: 1 to 256 characters, no whitespace or control characters"
})
