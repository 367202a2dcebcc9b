// A small declarative schema: one description of each field (type, range, enum, default,
// description, nesting) from which come the TypeScript types (inferred), the validator (one
// `field: message` per bad field, with class-validator's wording, which the API has always
// answered with), the defaults (filled in one place) and the OpenAPI schema objects.
// Why our own and not a library: none of zod/typebox/ajv is a dependency of the workspace
// (no network installs), class-validator needs a class, decorators and a second copy of the
// types, and the job spec needs defaults computed from other fields (checkpoint.bucket from
// dataset.bucket), which JSON-schema validators do not fill.

export interface FieldError {
  /** Dotted path into the input, e.g. `optimizer.lr` or `lrSchedule.milestones`. */
  field: string;
  message: string;
}

/** `required`: must be given; `optional`: may be absent in input and output; `defaulted`: may be absent in input, always in output. */
export type Presence = 'required' | 'optional' | 'defaulted';
type Obj = Record<string, unknown>;
/** The validated input object a field sits in, and the input's root: what computed defaults and checks read. */
type Ctx = { parent: Obj; root: Obj };
type Kind = 'int' | 'number' | 'string' | 'boolean' | 'enum' | 'array' | 'object' | 'record';
type JsonSchema = Record<string, unknown>;

interface FieldDef {
  kind: Kind;
  presence: Presence;
  description?: string;
  example?: unknown;
  /** The rules in the order they were declared, the type first; see checkField for the order they are checked in. */
  rules: Rule[];
  values?: readonly string[];
  item?: Field<unknown, Presence>;
  shape?: Record<string, Field<unknown, Presence>>;
  /** Component name in the OpenAPI document (objects). */
  name?: string;
  /** The component's own description (objects); `description` is the field's, where the object is used. */
  objectDescription?: string;
  finalize?: (out: Obj, ctx: Ctx) => void;
  defaultValue?: unknown;
  defaultWhen?: (ctx: Ctx) => boolean;
  defaultFrom?: (ctx: Ctx) => unknown;
  /** How the computed or conditional default reads in the documentation. */
  defaultDoc?: string;
  requiredWhen?: { test: (ctx: Ctx) => boolean; message: string };
}

/** One rule: whether a value (of any type: rules run on whatever was sent) passes, and what to say if not. */
interface Rule {
  ok: (v: unknown, ctx: Ctx) => boolean;
  message: (ctx: Ctx) => string;
  /** OpenAPI keywords the rule stands for. */
  openApi?: JsonSchema;
}

export class Field<T, P extends Presence = 'required', I = T> {
  declare readonly _out: T;
  declare readonly _in: I;
  declare readonly _presence: P;
  constructor(readonly def: FieldDef) {}

  private with<P2 extends Presence>(patch: Partial<FieldDef>): Field<T, P2, I> {
    return new Field({ ...this.def, ...patch });
  }
  optional(): Field<T, 'optional', I> { return this.with({ presence: 'optional' }); }
  /** Absent → `value` (shown as the OpenAPI default). */
  default(value: I): Field<T, 'defaulted', I> { return this.with({ presence: 'defaulted', defaultValue: value }); }
  /** Absent → `value` only where `when` holds (`doc` says where), else absent. */
  defaultWhen(value: I, when: (ctx: Ctx) => boolean, doc: string): Field<T, 'optional', I> {
    return this.with({ presence: 'optional', defaultValue: value, defaultWhen: when, defaultDoc: doc });
  }
  /** Absent → computed from the rest of the input (`doc` says how). */
  defaultFrom(compute: (ctx: Ctx) => T, doc: string): Field<T, 'defaulted', I> {
    return this.with({ presence: 'defaulted', defaultFrom: compute, defaultDoc: doc });
  }
  /** Optional, except where `test` holds: then absent is `message`. */
  requiredWhen(test: (ctx: Ctx) => boolean, message: string): Field<T, 'optional', I> {
    return this.with({ presence: 'optional', requiredWhen: { test, message } });
  }
  /**
   * A rule of our own: a message, or undefined if fine. Like every rule it sees whatever was
   * sent (not only values of the field's type) and runs before the rules declared ahead of it.
   */
  check(fn: (value: unknown, ctx: Ctx) => string | undefined): Field<T, P, I> {
    // ok() and message() are called back to back on the same value: compute the message once.
    let last = '';
    return this.rule({ ok: (v, ctx) => !(last = fn(v, ctx) ?? ''), message: () => last });
  }
  describe(description: string, example?: unknown): Field<T, P, I> { return this.with({ description, ...(example !== undefined ? { example } : {}) }); }
  min(n: number): Field<T, P, I> { return this.rule(num((v) => v >= n, `must not be less than ${n}`, { minimum: n })); }
  max(n: number): Field<T, P, I> { return this.rule(num((v) => v <= n, `must not be greater than ${n}`, { maximum: n })); }
  positive(): Field<T, P, I> { return this.rule(num((v) => v > 0, 'must be a positive number', { minimum: 0, exclusiveMinimum: true })); }
  nonEmpty(): Field<T, P, I> { return this.rule({ ok: (v) => v !== '' && !absent(v), message: () => 'should not be empty', openApi: { minLength: 1 } }); }
  minItems(n: number): Field<T, P, I> {
    return this.rule({ ok: (v) => Array.isArray(v) && v.length >= n, message: () => `must contain at least ${n} elements`, openApi: { minItems: n } });
  }
  pattern(re: RegExp, message: string): Field<T, P, I> {
    return this.rule({ ok: (v) => typeof v === 'string' && re.test(v), message: () => message, openApi: { pattern: re.source } });
  }
  private rule(r: Rule): Field<T, P, I> { return this.with({ rules: [...this.def.rules, r] }); }
  /** Objects: adjusts the output once its fields have their defaults (values forced by others, orderings). */
  finalize(fn: (out: T, ctx: Ctx) => void): Field<T, P, I> { return this.with({ finalize: fn as FieldDef['finalize'] }); }

  /** Checks `input` and fills the defaults; never throws on bad input. */
  parse(input: unknown): { value: T; errors?: undefined } | { value?: undefined; errors: FieldError[] } {
    const errors = this.validate(input);
    return errors.length ? { errors } : { value: this.withDefaults(input) };
  }

  /** Every problem of `input`, unknown fields first then in declaration order, one message per field. */
  validate(input: unknown): FieldError[] {
    const errors: FieldError[] = [];
    const root = (isObj(input) ? input : {}) as Obj;
    checkField(this.def, input, '', '', { parent: root, root }, errors);
    return errors;
  }

  /** The output of an input that validate() passed: every default filled in. */
  withDefaults(input: I | unknown): T {
    const root = (isObj(input) ? input : {}) as Obj;
    return fill(this.def, input, { parent: root, root }) as T;
  }

  /** OpenAPI 3.0 schema objects: this object's and every nested named object's, by component name. */
  openApiComponents(): Record<string, JsonSchema> {
    const out: Record<string, JsonSchema> = {};
    toOpenApi(this.def, out);
    return out;
  }
}

type AnyField = Field<unknown, Presence, unknown>;
type Shape = Record<string, AnyField>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OutKeys<S extends Shape, Opt extends boolean> = { [K in keyof S]: S[K]['_presence'] extends 'optional' ? (Opt extends true ? K : never) : (Opt extends true ? never : K) }[keyof S];
type InKeys<S extends Shape, Opt extends boolean> = { [K in keyof S]: S[K]['_presence'] extends 'required' ? (Opt extends true ? never : K) : (Opt extends true ? K : never) }[keyof S];
export type OutputOf<S extends Shape> = Simplify<{ [K in OutKeys<S, false>]: S[K]['_out'] } & { [K in OutKeys<S, true>]?: S[K]['_out'] }>;
export type InputOf<S extends Shape> = Simplify<{ [K in InKeys<S, false>]: S[K]['_in'] } & { [K in InKeys<S, true>]?: S[K]['_in'] | null }>;
/** The output type of a field: what parse() returns. */
export type Infer<F> = F extends Field<infer T, Presence, unknown> ? T : never;
/** The input type of a field: what a client may send. */
export type InferInput<F> = F extends Field<unknown, Presence, infer I> ? I : never;

const base = (kind: Kind, type: Rule, extra: Partial<FieldDef> = {}): FieldDef => ({ kind, presence: 'required', rules: [type], ...extra });
const rule = (ok: (v: unknown) => boolean, message: string): Rule => ({ ok, message: () => message });
function num(ok: (v: number) => boolean, message: string, openApi: JsonSchema): Rule {
  return { ok: (v) => typeof v === 'number' && ok(v), message: () => message, openApi };
}
const isInt = rule((v) => Number.isInteger(v), 'must be an integer number');
const isNumber = rule((v) => typeof v === 'number' && Number.isFinite(v), 'must be a number conforming to the specified constraints');
const isString = rule((v) => typeof v === 'string', 'must be a string');
const isBoolean = rule((v) => typeof v === 'boolean', 'must be a boolean value');
const isArray = rule((v) => Array.isArray(v), 'must be an array');
const isObject = rule(isObj, 'must be an object');
/** class-validator's `{ each: true }`: every element of an array (or a non-array itself), in the array's name. */
const each = (r: Rule, key: string): Rule => ({
  ok: (v, ctx) => (Array.isArray(v) ? v.every((x) => r.ok(x, ctx)) : r.ok(v, ctx)),
  message: (ctx) => `each value in ${key} ${r.message(ctx)}`,
});

/** The field builders. */
export const s = {
  int: () => new Field<number>(base('int', isInt)),
  number: () => new Field<number>(base('number', isNumber)),
  string: () => new Field<string>(base('string', isString)),
  boolean: () => new Field<boolean>(base('boolean', isBoolean)),
  enum: <const V extends readonly string[]>(values: V) =>
    new Field<V[number]>(base('enum', rule((v) => values.includes(v as string), `must be one of the following values: ${values.join(', ')}`), { values })),
  /** The element's rules apply to each element, after the array's own (minItems). */
  array: <T, I>(item: Field<T, Presence, I>) => new Field<T[], 'required', I[]>(base('array', isArray, { item: item as AnyField })),
  /** A free-form object (passed through unchecked). */
  record: () => new Field<Record<string, unknown>>(base('record', isObject)),
  object: <S extends Shape>(name: string, shape: S, description?: string) =>
    new Field<OutputOf<S>, 'required', InputOf<S>>(base('object', isObject, { name, shape, objectDescription: description })),
};

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
const absent = (v: unknown) => v === undefined || v === null;

/**
 * One message per field, as class-validator with stopAtFirstError gives it (the API's 400s
 * have always been worded so): the rules run last-declared first, on whatever value was
 * sent, and the first that fails is the message (`s.int().min(1)` on "x" says "must not be
 * less than 1"); an array's element rules run before its own. A required object that is
 * absent is "should not be null or undefined"; an object's fields are checked only when the
 * object itself passed, unknown fields first.
 */
function checkField(d: FieldDef, v: unknown, field: string, key: string, ctx: Ctx, errors: FieldError[]): void {
  const push = (message: string): void => void errors.push({ field, message });
  if (absent(v)) {
    if (d.presence === 'required' && d.kind === 'object') return push('should not be null or undefined');
    if (d.requiredWhen?.test(ctx)) return push(d.requiredWhen.message);
    if (d.presence !== 'required') return;
  }
  const rules = [...d.rules, ...(d.item ? d.item.def.rules.map((r) => each(r, key)) : [])];
  for (let i = rules.length - 1; i >= 0; i--) if (!rules[i].ok(v, ctx)) return push(rules[i].message(ctx));
  if (d.kind === 'object') {
    const o = v as Obj;
    const shape = d.shape!;
    for (const k of Object.keys(o)) if (!(k in shape)) errors.push({ field: join(field, k), message: `property ${k} should not exist` });
    for (const [k, f] of Object.entries(shape)) checkField(f.def, o[k], join(field, k), k, { parent: o, root: ctx.root }, errors);
  }
}

function fill(d: FieldDef, v: unknown, ctx: Ctx): unknown {
  if (absent(v)) {
    if (d.defaultFrom) return d.defaultFrom(ctx);
    if (d.defaultValue === undefined || (d.defaultWhen && !d.defaultWhen(ctx))) return undefined;
    v = d.defaultValue;
  }
  if (d.kind === 'array') return [...(v as unknown[])];
  if (d.kind === 'record') return { ...(v as Obj) };
  if (d.kind !== 'object') return v;
  const input = v as Obj;
  const out: Obj = {};
  for (const [k, f] of Object.entries(d.shape!)) {
    const x = fill(f.def, input[k], { parent: input, root: ctx.root });
    if (x !== undefined) out[k] = x;
  }
  d.finalize?.(out, { parent: input, root: ctx.root });
  return out;
}

function join(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

function toOpenApi(d: FieldDef, components: Record<string, JsonSchema>): JsonSchema {
  const docs: JsonSchema = {};
  let description = d.description;
  if (d.defaultDoc) description = `${description ? `${description}. ` : ''}Default: ${d.defaultDoc}`;
  if (description) docs.description = description;
  if (d.example !== undefined) docs.example = d.example;
  if (d.defaultValue !== undefined && d.kind !== 'object') docs.default = d.defaultValue;
  if (d.kind === 'object') {
    const props: Record<string, JsonSchema> = {};
    for (const [k, f] of Object.entries(d.shape!)) props[k] = toOpenApi(f.def, components);
    const required = Object.entries(d.shape!).filter(([, f]) => f.def.presence === 'required').map(([k]) => k);
    components[d.name!] = {
      type: 'object', ...(d.objectDescription ? { description: d.objectDescription } : {}),
      properties: props, ...(required.length ? { required } : {}), additionalProperties: false,
    };
    // OpenAPI 3.0 ignores siblings of $ref: wrap it so that the field's own description shows.
    const ref = { $ref: `#/components/schemas/${d.name}` };
    return Object.keys(docs).length ? { allOf: [ref], ...docs } : ref;
  }
  const type: JsonSchema = {
    int: { type: 'integer' }, number: { type: 'number' }, string: { type: 'string' }, boolean: { type: 'boolean' },
    enum: { type: 'string', enum: d.values }, record: { type: 'object', additionalProperties: true },
    array: d.item ? { type: 'array', items: toOpenApi(d.item.def, components) } : {},
  }[d.kind as Exclude<Kind, 'object'>];
  const range = Object.assign({}, ...d.rules.map((r) => r.openApi ?? {})) as JsonSchema;
  return { ...type, ...range, ...docs };
}
