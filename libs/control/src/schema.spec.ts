import { test } from 'node:test';
import assert from 'node:assert/strict';
import { s, type Infer, type InferInput } from './schema';

const inner = s.object('Inner', {
  kind: s.enum(['a', 'b'] as const),
  size: s.int().min(1).max(8).defaultFrom(({ parent }) => (parent.kind === 'a' ? 2 : 4), '2 for a, 4 for b'),
  mode: s.enum(['x', 'y'] as const).defaultWhen('x', ({ parent }) => parent.kind === 'a', 'x (kind a only)'),
});
const outer = s.object('Outer', {
  name: s.string().nonEmpty().describe('what it is called', 'n1'),
  count: s.int().min(1).default(3),
  inner: inner.optional(),
  list: s.array(s.int().min(1)).minItems(1).optional(),
  bucket: s.string().defaultFrom(({ root }) => `${root.name as string}-b`, 'name + "-b"'),
  limit: s.int().min(1).check((v, { parent }) => (typeof v === 'number' && v > (parent.count as number ?? 3) * 10 ? 'must not exceed 10 × count' : undefined)).optional(),
  nested: s.object('Nested', { on: s.boolean().default(true) }).default({}),
});

test('the types are inferred: defaulted fields are required in the output, optional in the input', () => {
  const value: Infer<typeof outer> = { name: 'n', count: 3, bucket: 'b', nested: { on: true } };
  const input: InferInput<typeof outer> = { name: 'n' };
  // @ts-expect-error count is always there in the output
  const bad: Infer<typeof outer> = { name: 'n', bucket: 'b', nested: { on: true } };
  assert.ok(value && input && bad);
});

test('defaults: static, computed from the parent or the root, conditional, nested objects', () => {
  assert.deepEqual(outer.parse({ name: 'n' }).value, { name: 'n', count: 3, bucket: 'n-b', nested: { on: true } });
  assert.deepEqual(outer.parse({ name: 'n', inner: { kind: 'a' } }).value?.inner, { kind: 'a', size: 2, mode: 'x' });
  assert.deepEqual(outer.parse({ name: 'n', inner: { kind: 'b' } }).value?.inner, { kind: 'b', size: 4 });
  // Given values win; null is absent.
  assert.deepEqual(outer.parse({ name: 'n', count: null, bucket: 'mine', inner: { kind: 'b', mode: 'y' } }).value, { name: 'n', count: 3, bucket: 'mine', inner: { kind: 'b', size: 4, mode: 'y' }, nested: { on: true } });
});

test('one message per field, in class-validator\'s words: the last-declared failing rule', () => {
  const errs = (v: unknown) => outer.validate(v).map((e) => `${e.field}: ${e.message}`);
  assert.deepEqual(errs({}), ['name: should not be empty']);
  assert.deepEqual(errs({ name: 5 }), ['name: must be a string']);
  // int().min(1).max(8): max is checked first, then min, then the type
  assert.deepEqual(errs({ name: 'n', inner: { kind: 'a', size: 9 } }), ['inner.size: must not be greater than 8']);
  assert.deepEqual(errs({ name: 'n', inner: { kind: 'a', size: 'x' } }), ['inner.size: must not be greater than 8']);
  assert.deepEqual(errs({ name: 'n', inner: { kind: 'a', size: 2.5 } }), ['inner.size: must be an integer number']);
  assert.deepEqual(errs({ name: 'n', inner: { kind: 'c' } }), ['inner.kind: must be one of the following values: a, b']);
  assert.deepEqual(errs({ name: 'n', inner: 'a' }), ['inner: must be an object']);
  assert.deepEqual(errs({ name: 'n', list: [1, 0] }), ['list: each value in list must not be less than 1']);
  assert.deepEqual(errs({ name: 'n', list: [] }), ['list: must contain at least 1 elements']);
  assert.deepEqual(errs({ name: 'n', count: 2, limit: 21 }), ['limit: must not exceed 10 × count']);
  assert.deepEqual(errs({ name: 'n', extra: 1, inner: { kind: 'a', more: 2 } }), ['extra: property extra should not exist', 'inner.more: property more should not exist']);
  assert.deepEqual(errs({ name: 'n', count: 0, nested: { on: 'yes' } }), ['count: must not be less than 1', 'nested.on: must be a boolean value']);
});

test('OpenAPI: a component per object, references for nesting, defaults and ranges from the same declarations', () => {
  const c = outer.openApiComponents();
  assert.deepEqual(Object.keys(c).sort(), ['Inner', 'Nested', 'Outer']);
  assert.deepEqual(c.Outer.required, ['name']);
  assert.equal(c.Outer.additionalProperties, false);
  const p = c.Outer.properties as Record<string, Record<string, unknown>>;
  assert.deepEqual(p.name, { type: 'string', minLength: 1, description: 'what it is called', example: 'n1' });
  assert.deepEqual(p.count, { type: 'integer', minimum: 1, default: 3 });
  assert.deepEqual(p.inner, { $ref: '#/components/schemas/Inner' });
  assert.deepEqual(p.list, { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 1 });
  assert.equal(p.bucket.description, 'Default: name + "-b"');
  const ip = c.Inner.properties as Record<string, Record<string, unknown>>;
  assert.deepEqual(ip.mode, { type: 'string', enum: ['x', 'y'], default: 'x', description: 'Default: x (kind a only)' });
  assert.deepEqual(ip.size, { type: 'integer', maximum: 8, minimum: 1, description: 'Default: 2 for a, 4 for b' });
});
