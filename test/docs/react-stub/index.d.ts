/**
 * A typed stand-in for the React hooks the docs' React sample uses, so that sample type-checks without React
 * being a dependency of tidings. Signatures follow @types/react for these hooks; nothing else is declared.
 */
export type DependencyList = ReadonlyArray<unknown>
export type Destructor = () => void
// biome-ignore lint/suspicious/noConfusingVoidType: the same signature as @types/react
export type EffectCallback = () => void | Destructor

export declare function useEffect(effect: EffectCallback, deps?: DependencyList): void
export declare function useSyncExternalStore<Snapshot>(
  subscribe: (onStoreChange: () => void) => () => void,
  getSnapshot: () => Snapshot
): Snapshot
