import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validateSync, type ValidationError } from 'class-validator';

/** Raw environment: variable name -> string value. */
export type Env = Record<string, string | undefined>;

/** Injection token of the environment the configuration was loaded from (`process.env` + overrides). */
export const CONFIG_ENV = Symbol('CONFIG_ENV');

/** Thrown at boot when a configuration variable is missing or malformed; the message names the variable. */
export class ConfigValidationError extends Error {
  readonly code = 'ConfigInvalid';
  constructor(readonly problems: { variable: string; reason: string }[]) {
    super(`Invalid configuration: ${problems.map((p) => `${p.variable}: ${p.reason}`).join('; ')}`);
    this.name = 'ConfigValidationError';
  }
}

/**
 * Builds one validated configuration class from the environment. Each class declares its
 * variables as properties named exactly like the environment variable, with defaults as
 * initialisers; empty strings count as unset so `FOO=` in a .env file falls back to the default.
 *
 * @throws ConfigValidationError naming every offending variable (values are never echoed: they may be secrets)
 */
export function loadConfigClass<T extends object>(cls: new () => T, env: Env): T {
  const plain: Record<string, unknown> = {};
  const defaults = new cls() as Record<string, unknown>;
  for (const key of variablesOf(cls)) {
    const raw = env[key];
    if (raw === undefined || raw === '') continue;
    plain[key] = coerce(raw, defaults[key] ?? designType(cls, key));
  }
  const instance = plainToInstance(cls, plain, {
    enableImplicitConversion: false,
    exposeDefaultValues: true,
  });
  const errors = validateSync(instance, { skipMissingProperties: false, forbidUnknownValues: true });
  if (errors.length > 0) throw new ConfigValidationError(flatten(errors));
  return instance;
}

/**
 * Coerces a raw value by its default's type before class-transformer sees it. swc emits no design:type
 * for un-annotated properties, and for annotated ones class-transformer's implicit conversion runs before
 * `@Transform` (`Boolean("false")` is true), so neither can be relied on: numbers, booleans and lists
 * are parsed here; a value that does not parse is passed on as the string, for the validator to reject.
 */
function coerce(raw: string, fallback: unknown): unknown {
  if (typeof fallback === 'number' || fallback === Number) return raw.trim() !== '' ? Number(raw) : raw;
  if (typeof fallback === 'boolean' || fallback === Boolean) return toBoolean({ value: raw });
  if (Array.isArray(fallback) || fallback === Array) return toList({ value: raw });
  return raw;
}

/** The declared type of an optional property without a default (`design:type`, when the compiler emitted it). */
function designType(cls: new () => object, key: string): unknown {
  return Reflect.getMetadata('design:type', cls.prototype as object, key) as unknown;
}

/** Every variable a configuration class declares: its validated properties, optional ones included. */
export function variablesOf(cls: new () => object): string[] {
  const metadata = getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false);
  return [...new Set([...Object.keys(new cls()), ...metadata.map((m) => m.propertyName)])];
}

function flatten(errors: ValidationError[]): { variable: string; reason: string }[] {
  return errors.map((e) => ({
    variable: e.property,
    reason: Object.values(e.constraints ?? {}).join(', ') || 'invalid',
  }));
}

/** Parses a boolean environment value: true/false/1/0/yes/no/on/off (case-insensitive). */
export function toBoolean({ value }: { value: unknown }): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
}

/** Parses a comma-separated list, trimming blanks. */
export function toList({ value }: { value: unknown }): unknown {
  if (typeof value !== 'string') return value;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
