/**
 * The JSX runtime types for the React stand-in (see index.d.ts): intrinsic elements take any attributes, and a
 * component is a function of its props. Enough for `tsc` to check the tidings calls inside the docs' React sample.
 */
export declare namespace JSX {
  type Element = { readonly type: unknown; readonly props: unknown; readonly key: string | null }
  interface ElementChildrenAttribute {
    children: {}
  }
  interface IntrinsicAttributes {
    key?: string | number
  }
  interface IntrinsicElements {
    [element: string]: Record<string, unknown>
  }
}
export declare function jsx(type: unknown, props: unknown, key?: string): JSX.Element
export declare const jsxs: typeof jsx
export declare const Fragment: unique symbol
