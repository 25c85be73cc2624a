import { existsSync } from 'node:fs';
import { type DynamicModule, Global, Module } from '@nestjs/common';
import { CONFIG_RULES, type ConfigLookup } from './config.checks';
import { CONFIG_ENV, ConfigValidationError, type Env, loadConfigClass } from './config.loader';
import { CONFIG_CLASSES } from './config.registry';

/**
 * Loads `.env` (if present) into the process environment, once. Real environment variables win.
 */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/**
 * Validates every configuration class against `env`, then the combinations in CONFIG_RULES, and returns
 * the classes keyed by class.
 * @throws ConfigValidationError listing every bad variable across all classes, or every combination
 *   that cannot work (named `A + B: why`)
 */
export function loadAllConfig(env: Env): Map<new () => object, object> {
  const loaded = new Map<new () => object, object>();
  const problems: ConfigValidationError['problems'] = [];
  for (const cls of CONFIG_CLASSES as readonly (new () => object)[]) {
    try {
      loaded.set(cls, loadConfigClass(cls, env));
    } catch (e) {
      if (e instanceof ConfigValidationError) problems.push(...e.problems);
      else throw e;
    }
  }
  if (problems.length > 0) throw new ConfigValidationError(problems);
  const lookup = (<T extends object>(cls: new () => T): T => loaded.get(cls) as T) as ConfigLookup;
  for (const rule of CONFIG_RULES) {
    const reason = rule.check(lookup);
    if (reason) problems.push({ variable: rule.variables.join(' + '), reason });
  }
  if (problems.length > 0) throw new ConfigValidationError(problems);
  return loaded;
}

/**
 * Global module providing each configuration class (inject `AppConfig`, `RedisConfig`, ...).
 * `overrides` are merged over `process.env` — tests and the bench harness use them.
 */
@Global()
@Module({})
export class KvchatConfigModule {
  static forRoot(overrides: Env = {}): DynamicModule {
    const env = { ...process.env, ...overrides };
    const loaded = loadAllConfig(env);
    const providers = [
      ...[...loaded.entries()].map(([cls, value]) => ({ provide: cls, useValue: value })),
      // Variables named by other files (the model catalogue's `apiKeyEnv`), read from the same merged env.
      { provide: CONFIG_ENV, useValue: env },
    ];
    return { module: KvchatConfigModule, providers, exports: providers.map((p) => p.provide) };
  }
}
