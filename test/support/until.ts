/** Polls `check` every 10 ms until it holds or `timeoutMs` passes; resolves to its last answer. */
export const until = async (check: () => boolean, timeoutMs = 2000): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  return check()
}
