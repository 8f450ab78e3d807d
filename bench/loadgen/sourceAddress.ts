/**
 * Which loopback address a load-generator client connects from. Toward one server port, a source address has
 * about 28,000 ephemeral ports (32768–60999 here), and closed connections hold theirs in TIME_WAIT for a minute:
 * 100,000 clients from 127.0.0.1 alone cannot connect. Linux answers on all of 127.0.0.0/8, so client `index`
 * connects from one of SOURCE_ADDRESSES addresses, 127.0.0.2 up, round-robin — never 127.0.0.1, whose ports
 * the other programs on the machine keep. Servers elsewhere than loopback get no source address (the kernel
 * picks).
 */

/** Loopback source addresses in use: at 100,000 clients about 1,600 ports each, TIME_WAIT of earlier runs included. */
export const SOURCE_ADDRESSES = 64

/** The source address of client `index` toward `host`, or undefined when `host` is not an IPv4 loopback address. */
export const sourceAddressOf = (index: number, host: string): string | undefined =>
  host.startsWith("127.") ? `127.0.0.${2 + (index % SOURCE_ADDRESSES)}` : undefined
