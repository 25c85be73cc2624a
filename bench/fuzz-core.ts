import fc from 'fast-check';
import { sample as sampleSchema } from 'openapi-sampler';
import { request } from 'undici';

/** One request the fuzzer sent, and what came back. */
export interface FuzzResult {
  method: string;
  path: string;
  /** What was done to the request (`valid`, `field title=nul`, `raw: deep-array`, ...). */
  mutation: string;
  status: number;
  /** First 300 bytes of the body sent, for reproducing a failure. */
  bodyPreview: string;
  /** First 300 bytes of the response, for failures. */
  responsePreview?: string;
}

/** What a fuzz run reports (`summary` in the JSON report). */
export interface FuzzSummary {
  requests: number;
  /** Responses by HTTP status (`"0"` = no response: connection reset or timeout). */
  byStatus: Record<string, number>;
  /** Responses >= 500, and requests without any response. */
  serverErrors: number;
}

/** Options of `runFuzz`. */
export interface FuzzOptions {
  baseUrl: string;
  /** API key for authenticated operations (without one, every authenticated request is a 401 probe). */
  apiKey?: string;
  /** fast-check seed: the same seed, document and data give the same requests. */
  seed: number;
  requests: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Per-request timeout, ms (no answer in time counts as a server error). */
  timeoutMs?: number;
}

type JsonSchema = Record<string, unknown>;
interface Operation {
  method: string;
  path: string;
  /** A request body built from the schema's examples (openapi-sampler), when the operation takes one. */
  body?: unknown;
  pathParams: string[];
  query: { name: string; schema: JsonSchema }[];
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components?: unknown;
}

/** Every operation of an OpenAPI document, with a sample body made from its schema and examples. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const params = (op.parameters ?? []) as { name: string; in: string; schema?: JsonSchema }[];
      const content = (op.requestBody as { content?: Record<string, { schema?: JsonSchema }> } | undefined)
        ?.content?.['application/json'];
      ops.push({
        method: method.toUpperCase(),
        path,
        body: content?.schema
          ? sampleSchema(content.schema as never, { skipReadOnly: true }, doc as never)
          : undefined,
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        query: params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema ?? {} })),
      });
    }
  }
  return ops;
}

/** Hostile values for one JSON field. */
const hostileValue: fc.Arbitrary<[string, unknown]> = fc.oneof(
  fc.constant<[string, unknown]>(['nul', 'a\u0000b']),
  fc.constant<[string, unknown]>(['lone-surrogate', 'x\uD800y']),
  fc.constant<[string, unknown]>(['low-surrogate', '\uDC00']),
  fc.integer({ min: 1, max: 200_000 }).map((n): [string, unknown] => [`long-${n}`, 'x'.repeat(n)]),
  fc.string({ unit: 'grapheme', maxLength: 50 }).map((s): [string, unknown] => ['unicode', s]),
  fc.string({ maxLength: 20 }).map((s): [string, unknown] => ['string', s]),
  fc
    .oneof(fc.integer(), fc.double({ noNaN: true }), fc.constant(1e308), fc.constant(-1), fc.constant(0))
    .map((n): [string, unknown] => ['number', n]),
  fc.constant<[string, unknown]>(['null', null]),
  fc.constant<[string, unknown]>(['true', true]),
  fc.constant<[string, unknown]>(['empty-array', []]),
  fc.constant<[string, unknown]>(['nested-empty-array', [[]]]),
  fc.constant<[string, unknown]>(['object', { a: { b: 'c' } }]),
  fc.constant<[string, unknown]>(['proto', JSON.parse('{"__proto__":{"x":1}}') as unknown]),
  fc.integer({ min: 2, max: 64 }).map((n): [string, unknown] => [`nested-${n}`, nest(n)]),
);

function nest(depth: number): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = { k: v };
  return v;
}

/** A raw body that is not a JSON document the schema describes. */
const rawBody: fc.Arbitrary<[string, string, string]> = fc.oneof(
  fc
    .integer({ min: 100, max: 30_000 })
    .map((n): [string, string, string] => [
      `deep-array-${n}`,
      'application/json',
      '['.repeat(n) + ']'.repeat(n),
    ]),
  fc
    .integer({ min: 100, max: 30_000 })
    .map((n): [string, string, string] => [
      `deep-object-${n}`,
      'application/json',
      '{"a":'.repeat(n) + '1' + '}'.repeat(n),
    ]),
  fc.constant<[string, string, string]>(['truncated', 'application/json', '{"title": "x']),
  fc.constant<[string, string, string]>(['empty', 'application/json', '']),
  fc.constant<[string, string, string]>(['not-json', 'application/json', 'hello']),
  fc.constant<[string, string, string]>([
    'nul-escape',
    'application/json',
    '{"title":"\\u0000","content":"\\u0000"}',
  ]),
  fc.constant<[string, string, string]>([
    'surrogate-escape',
    'application/json',
    '{"content":"\\ud800","title":"\\udfff"}',
  ]),
  fc.constant<[string, string, string]>(['xml', 'application/xml', '<a/>']),
  fc.constant<[string, string, string]>(['text', 'text/plain', 'hi']),
  fc.constant<[string, string, string]>(['array-root', 'application/json', '[]']),
  fc.constant<[string, string, string]>(['null-root', 'application/json', 'null']),
  fc.constant<[string, string, string]>(['string-root', 'application/json', '"x"']),
);

/** A hostile path parameter. */
const hostileParam: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.constant<[string, string]>(['bad-percent', '%E0%A4%A']),
  fc.constant<[string, string]>(['percent-nul', '%00']),
  fc.integer({ min: 101, max: 3000 }).map((n): [string, string] => [`long-${n}`, 'a'.repeat(n)]),
  fc.uuid().map((u): [string, string] => ['unknown-uuid', u]),
  fc.string({ minLength: 1, maxLength: 40 }).map((s): [string, string] => ['string', encodeURIComponent(s)]),
);

/** A hostile page cursor: an encoded (date|id) or (sequence) with bad parts, or noise. */
const hostileCursor: fc.Arbitrary<[string, string]> = fc.oneof(
  fc
    .tuple(
      fc.oneof(
        fc.constant('99999-01-01T00:00:00.000Z'),
        fc.constant('-000001-01-01T00:00:00.000Z'),
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      ),
      fc.oneof(fc.uuid(), fc.constant('not-a-uuid'), fc.string({ maxLength: 10 })),
    )
    .map(([d, id]): [string, string] => [`cursor(${d}|…)`, Buffer.from(`${d}|${id}`).toString('base64url')]),
  fc
    .oneof(fc.constant('1e30'), fc.constant('-5'), fc.constant('99999999999'), fc.integer().map(String))
    .map((n): [string, string] => [`cursor(${n})`, Buffer.from(n).toString('base64url')]),
  fc.string({ maxLength: 60 }).map((s): [string, string] => ['cursor-noise', s]),
);

/** A request: an operation, a mutation kind and its data. */
interface Plan {
  op: number;
  kind: 'valid' | 'field' | 'raw' | 'param' | 'query' | 'auth' | 'stream';
  field: number;
  value: [string, unknown];
  raw: [string, string, string];
  param: [string, string];
  cursor: [string, string];
  limit: number;
}

/** Sets `path` (dot/bracket-free: top-level or one level into the first array element) of a copy of `body`. */
function withField(body: unknown, index: number, value: unknown): [string, unknown] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return ['(body)', value];
  const copy = structuredClone(body) as Record<string, unknown>;
  const fields: [string, (v: unknown) => void][] = Object.keys(copy).map((k) => [k, (v) => (copy[k] = v)]);
  for (const [k, v] of Object.entries(copy)) {
    if (Array.isArray(v) && typeof v[0] === 'object' && v[0] !== null) {
      const first = v[0] as Record<string, unknown>;
      for (const inner of Object.keys(first)) fields.push([`${k}[0].${inner}`, (x) => (first[inner] = x)]);
    }
  }
  if (fields.length === 0) return ['(body)', value];
  const [name, set] = fields[index % fields.length];
  set(value);
  return [name, copy];
}

/**
 * Sends `requests` requests derived from the service's own OpenAPI document (`/docs-json`): valid
 * samples (openapi-sampler, from the schemas' examples), each field replaced by hostile values, raw
 * bodies (deep nesting, malformed JSON, other media types), hostile path parameters and cursors,
 * missing or bad credentials, and streamed variants — all drawn by fast-check from `seed`.
 * @returns every result and the summary; a status >= 500 (or no answer) is a server error
 */
export async function runFuzz(
  options: FuzzOptions,
  onResult?: (r: FuzzResult) => void,
): Promise<{ summary: FuzzSummary; results: FuzzResult[] }> {
  const base = options.baseUrl.replace(/\/$/, '');
  const docResponse = await request(`${base}/docs-json`);
  if (docResponse.statusCode !== 200) {
    throw new Error(
      `GET ${base}/docs-json answered ${docResponse.statusCode}: the fuzzer needs the OpenAPI document`,
    );
  }
  const doc = (await docResponse.body.json()) as OpenApiDocument;
  const ops = operationsOf(doc);
  const auth: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};

  // A real conversation for the operations that take an id.
  let conversationId = '00000000-0000-4000-8000-000000000000';
  if (options.apiKey) {
    const created = await request(`${base}/v1/conversations`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'fuzz' }),
    });
    const body = (await created.body.json()) as { id?: string };
    if (body.id) conversationId = body.id;
  }

  const plans = fc.sample(
    fc.record<Plan>({
      op: fc.nat({ max: ops.length - 1 }),
      kind: fc.constantFrom(
        'valid',
        'field',
        'field',
        'field',
        'raw',
        'raw',
        'param',
        'query',
        'auth',
        'stream',
      ),
      field: fc.nat({ max: 50 }),
      value: hostileValue,
      raw: rawBody,
      param: hostileParam,
      cursor: hostileCursor,
      limit: fc.oneof(fc.integer({ min: -5, max: 200 }), fc.constant(1e12)),
    }),
    { seed: options.seed, numRuns: options.requests },
  );

  const results: FuzzResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plans.length) {
      const plan = plans[next++];
      const result = await send(base, ops[plan.op], plan, auth, conversationId, options.timeoutMs ?? 30_000);
      results.push(result);
      onResult?.(result);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));

  const byStatus: Record<string, number> = {};
  for (const r of results) byStatus[String(r.status)] = (byStatus[String(r.status)] ?? 0) + 1;
  return {
    summary: {
      requests: results.length,
      byStatus,
      serverErrors: results.filter((r) => r.status >= 500 || r.status === 0).length,
    },
    results,
  };
}

async function send(
  base: string,
  op: Operation,
  plan: Plan,
  auth: Record<string, string>,
  conversationId: string,
  timeoutMs: number,
): Promise<FuzzResult> {
  let path = op.path;
  let mutation: string = plan.kind;
  for (const name of op.pathParams) {
    const value = plan.kind === 'param' ? plan.param[1] : conversationId;
    path = path.replace(`{${name}}`, value);
    if (plan.kind === 'param') mutation = `param ${name}=${plan.param[0]}`;
  }
  const query = new URLSearchParams();
  if (plan.kind === 'query') {
    for (const q of op.query) {
      if (q.name === 'cursor') query.set('cursor', plan.cursor[1]);
      else if (q.name === 'limit') query.set('limit', String(plan.limit));
    }
    mutation = `query cursor=${plan.cursor[0]} limit=${plan.limit}`;
  }
  const url = `${base}${path}${query.size > 0 ? `?${query.toString()}` : ''}`;
  const headers: Record<string, string> =
    plan.kind === 'auth' ? { authorization: 'Bearer not-a-key' } : { ...auth };
  let body: string | undefined;
  if (op.method !== 'GET' && op.method !== 'DELETE') {
    headers['content-type'] = 'application/json';
    if (plan.kind === 'raw') {
      headers['content-type'] = plan.raw[1];
      body = plan.raw[2];
      mutation = `raw ${plan.raw[0]}`;
    } else if (plan.kind === 'field') {
      const [field, mutated] = withField(op.body, plan.field, plan.value[1]);
      body = JSON.stringify(mutated);
      mutation = `field ${field}=${plan.value[0]}`;
    } else if (plan.kind === 'stream' && typeof op.body === 'object' && op.body !== null) {
      body = JSON.stringify({ ...op.body, stream: true });
      headers.accept = 'text/event-stream';
    } else if (op.body !== undefined) {
      body = JSON.stringify(op.body);
    }
  }
  try {
    const response = await request(url, {
      method: op.method as 'GET',
      headers,
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await response.body.text();
    return {
      method: op.method,
      path: op.path,
      mutation,
      status: response.statusCode,
      bodyPreview: (body ?? '').slice(0, 300),
      ...(response.statusCode >= 500 ? { responsePreview: text.slice(0, 300) } : {}),
    };
  } catch (e) {
    return {
      method: op.method,
      path: op.path,
      mutation,
      status: 0,
      bodyPreview: (body ?? '').slice(0, 300),
      responsePreview: e instanceof Error ? e.message : String(e),
    };
  }
}
