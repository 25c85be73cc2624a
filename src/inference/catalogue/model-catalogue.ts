import { readFileSync } from 'node:fs';
import { plainToInstance, Type } from 'class-transformer';
import {
  IsArray,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Min,
  ValidateNested,
  validateSync,
  type ValidationError,
} from 'class-validator';
import { parse as parseYaml } from 'yaml';

/** The providers a deployment can name; each is one EngineAdapter (see provider-adapters.ts). */
export const PROVIDERS = ['vllm', 'openai', 'anthropic'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** A deployment's token prices, USD per million tokens (the usage ledger's `ModelPrice`). */
export class DeploymentPrices {
  /** Uncached prompt tokens, USD per million. */
  @IsNumber() @Min(0) input!: number;
  /** Prompt tokens served from the provider's prompt cache, USD per million. Default: `input`. */
  @IsOptional() @IsNumber() @Min(0) cachedInput?: number;
  /** Completion tokens, USD per million. */
  @IsNumber() @Min(0) output!: number;
}

/** One upstream that can answer a public model: a provider, its model name, where and how to call it. */
export class DeploymentSpec {
  /** Unique over the catalogue (`/^[a-z0-9][a-z0-9._-]*$/i`); default `<model>#<index>`. Names it in headers and metrics. */
  @IsOptional() @IsString() @Matches(/^[a-z0-9][a-z0-9._-]{0,99}$/i) id?: string;
  /** Which adapter speaks to it: `vllm`, `openai` (any OpenAI-compatible API) or `anthropic`. */
  @IsIn(PROVIDERS) provider!: ProviderName;
  /** The model name the upstream knows (`gpt-4o-mini`, `claude-sonnet-4-5`, the vLLM served name). */
  @IsString() model!: string;
  /**
   * Base URL (`https://api.openai.com/v1`, `https://api.anthropic.com`). Required for `openai` and
   * `anthropic`; for `vllm`, unset = the engine replicas (INFERENCE_ENDPOINTS or the simulator) with the
   * prefix-aware router.
   */
  @IsOptional() @IsUrl({ require_tld: false, require_protocol: true }) baseURL?: string;
  /** Name of the environment variable that holds the API key (the key itself never sits in the file). */
  @IsOptional() @Matches(/^[A-Z_][A-Z0-9_]*$/) apiKeyEnv?: string;
  /** Whole-request timeout, ms. Default INFERENCE_TIMEOUT_MS. */
  @IsOptional() @IsInt() @Min(100) timeoutMs?: number;
  /** Time allowed until the first token, ms; past it the next target is tried. Default INFERENCE_FIRST_TOKEN_TIMEOUT_MS. */
  @IsOptional() @IsInt() @Min(100) firstTokenTimeoutMs?: number;
  /** Share of first attempts among the model's deployments (weighted random). Default 1. */
  @IsOptional() @IsNumber() @Min(0) weight?: number;
  /** Requests per minute the upstream allows; past it the deployment is skipped for the minute. */
  @IsOptional() @IsInt() @Min(1) rpm?: number;
  /** Tokens per minute the upstream allows (prompt + completion, counted after each answer). */
  @IsOptional() @IsInt() @Min(1) tpm?: number;
  /** Prices, USD per million tokens (feed the usage ledger). */
  @IsOptional() @ValidateNested() @Type(() => DeploymentPrices) prices?: DeploymentPrices;
  /** Extra HTTP headers sent with every request to this deployment (e.g. `anthropic-beta`, `OpenAI-Organization`). */
  @IsOptional() @IsObject() headers?: Record<string, string>;
}

/** One public model name. */
export class ModelSpec {
  @IsArray() @ValidateNested({ each: true }) @Type(() => DeploymentSpec) deployments!: DeploymentSpec[];
  /** Tried in order after this model's deployments: other models' names or deployment ids. */
  @IsOptional() @IsArray() @IsString({ each: true }) fallbacks?: string[];
}

/** A deployment as the router uses it: the spec with defaults applied and the key read. */
export interface Deployment {
  id: string;
  /** The public model it serves. */
  publicModel: string;
  provider: ProviderName;
  model: string;
  /** Undefined only for `vllm` on the engine replicas. */
  baseURL?: string;
  apiKey?: string;
  timeoutMs?: number;
  firstTokenTimeoutMs?: number;
  weight: number;
  rpm?: number;
  tpm?: number;
  prices?: { input: number; cachedInput: number; output: number };
  headers?: Record<string, string>;
}

/** One public model: its deployments and its ordered fallbacks (other model names or deployment ids). */
export interface CatalogueModel {
  name: string;
  deployments: Deployment[];
  fallbacks: string[];
}

/** The validated catalogue. `source` is the file, or `default` (the engine replicas' single model). */
export interface ModelCatalogueData {
  source: string;
  models: CatalogueModel[];
}

export const MODEL_CATALOGUE = Symbol('MODEL_CATALOGUE');

/** A catalogue file that cannot be used; the message names the file and every bad entry. */
export class CatalogueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogueError';
  }
}

function flatten(errors: ValidationError[], path: string): string[] {
  return errors.flatMap((e) => {
    const here = /^\d+$/.test(e.property) ? `${path}[${e.property}]` : `${path}.${e.property}`;
    const own = Object.values(e.constraints ?? {}).map((m) => `${here}: ${m}`);
    return [...own, ...flatten(e.children ?? [], here)];
  });
}

/**
 * Parses and validates a catalogue (YAML text): `models: { <public name>: { deployments: [...], fallbacks: [...] } }`.
 * API keys are read from `env` by the name in `apiKeyEnv`.
 * @throws CatalogueError naming `models.<name>.deployments[i].<field>` and what is wrong, a missing key
 *   variable, a duplicate deployment id, or a fallback that names nothing
 */
export function parseCatalogue(
  text: string,
  source: string,
  env: Record<string, string | undefined>,
): ModelCatalogueData {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new CatalogueError(`${source}: not valid YAML: ${(e as Error).message}`);
  }
  const modelsRaw = (raw as { models?: unknown } | null)?.models;
  if (typeof modelsRaw !== 'object' || modelsRaw === null || Array.isArray(modelsRaw)) {
    throw new CatalogueError(
      `${source}: \`models\` must be a mapping of public model name -> {deployments, fallbacks}`,
    );
  }
  const problems: string[] = [];
  const models: CatalogueModel[] = [];
  const ids = new Set<string>();
  for (const [name, value] of Object.entries(modelsRaw as Record<string, unknown>)) {
    const spec = plainToInstance(ModelSpec, value ?? {});
    const errors = validateSync(spec, { whitelist: true, forbidNonWhitelisted: true });
    if (errors.length > 0) {
      problems.push(...flatten(errors, `models.${name}`));
      continue;
    }
    if (spec.deployments.length === 0)
      problems.push(`models.${name}.deployments: needs at least one deployment`);
    const deployments = spec.deployments.map((d, i): Deployment => {
      const at = `models.${name}.deployments[${i}]`;
      const id = d.id ?? `${name}#${i}`;
      if (ids.has(id)) problems.push(`${at}.id: \`${id}\` is used twice`);
      ids.add(id);
      if (d.provider !== 'vllm' && !d.baseURL)
        problems.push(`${at}.baseURL: required for provider ${d.provider}`);
      let apiKey: string | undefined;
      if (d.apiKeyEnv) {
        apiKey = env[d.apiKeyEnv];
        if (!apiKey)
          problems.push(`${at}.apiKeyEnv: the environment variable ${d.apiKeyEnv} is unset or empty`);
      }
      return {
        id,
        publicModel: name,
        provider: d.provider,
        model: d.model,
        ...(d.baseURL ? { baseURL: d.baseURL.replace(/\/+$/, '') } : {}),
        ...(apiKey ? { apiKey } : {}),
        ...(d.timeoutMs ? { timeoutMs: d.timeoutMs } : {}),
        ...(d.firstTokenTimeoutMs ? { firstTokenTimeoutMs: d.firstTokenTimeoutMs } : {}),
        weight: d.weight ?? 1,
        ...(d.rpm ? { rpm: d.rpm } : {}),
        ...(d.tpm ? { tpm: d.tpm } : {}),
        ...(d.prices
          ? {
              prices: {
                input: d.prices.input,
                cachedInput: d.prices.cachedInput ?? d.prices.input,
                output: d.prices.output,
              },
            }
          : {}),
        ...(d.headers ? { headers: d.headers } : {}),
      };
    });
    models.push({ name, deployments, fallbacks: spec.fallbacks ?? [] });
  }
  const names = new Set(models.map((m) => m.name));
  for (const m of models) {
    for (const [i, f] of m.fallbacks.entries()) {
      if (!names.has(f) && !ids.has(f)) {
        problems.push(`models.${m.name}.fallbacks[${i}]: \`${f}\` is neither a model nor a deployment id`);
      }
    }
  }
  if (models.length === 0 && problems.length === 0) problems.push('models: lists no model');
  if (problems.length > 0) throw new CatalogueError(`${source}: ${problems.join('; ')}`);
  return { source, models };
}

/** Reads and validates the catalogue file. @throws CatalogueError naming the file and the bad entries */
export function loadCatalogueFile(path: string, env: Record<string, string | undefined>): ModelCatalogueData {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CatalogueError(`MODEL_CATALOGUE_PATH=${path}: cannot be read (${(e as Error).message})`);
  }
  return parseCatalogue(text, path, env);
}

/** Today's behaviour as a catalogue: one model, served by the engine replicas through the vLLM adapter. */
export function defaultCatalogue(model: string): ModelCatalogueData {
  return {
    source: 'default',
    models: [
      {
        name: model,
        deployments: [{ id: 'engine', publicModel: model, provider: 'vllm', model, weight: 1 }],
        fallbacks: [],
      },
    ],
  };
}
