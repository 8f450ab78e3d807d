/**
 * Turns a Schema decoding failure into what an `error` frame or an HTTP 400 carries: a human message and the
 * path of the first bad field. Keeps SchemaIssue formatting in one place.
 */
import { type Schema, SchemaIssue } from "effect"

export interface SchemaProblem {
  readonly message: string
  readonly path: ReadonlyArray<string | number>
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const segment = (key: PropertyKey): string | number => (typeof key === "number" ? key : String(key))

export const fromSchemaError = (
  error: Schema.SchemaError,
  prefix: ReadonlyArray<string | number> = []
): SchemaProblem => {
  const first = formatter(error.issue).issues[0]
  const path = [...prefix, ...(first?.path ?? []).map((p) => segment(typeof p === "object" ? p.key : p))]
  const where = path.length > 0 ? ` at ${path.join(".")}` : ""
  return { message: `${first?.message ?? error.message}${where}`, path }
}
