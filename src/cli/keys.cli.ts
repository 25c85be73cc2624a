import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { AppConfig } from '../config/app.config';
import { loadConfigClass } from '../config/config.loader';
import { loadDotEnv } from '../config/config.module';
import { DatabaseConfig } from '../config/database.config';
import { openStandaloneDatabase } from '../database/standalone';
import { ENTITIES } from '../entities';
import { ApiKeyService } from '../auth/api-key.service';
import { type Scope, SCOPES } from '../auth/scopes';

interface CreateOptions {
  tenant: string;
  name?: string;
  scopes?: string[];
  models?: string[];
  rpm?: number;
  tpm?: number;
  expiresAt?: Date;
  tokensPerDay?: number;
  tokensPerMonth?: number;
  spendPerDay?: number;
  spendPerMonth?: number;
  platformAdmin: boolean;
  admin: boolean;
}

const list = (value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function amount(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number >= 0');
  return n;
}

function instant(value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError('must be an ISO 8601 instant');
  return d;
}

/**
 * `npm run keys:create -- --tenant <name> [--name <label>] [--scopes chat,usage:read] [--models m1,m2]
 * [--rpm N] [--tpm N] [--expires-at ISO] [--tokens-per-day N] ... [--platform-admin]` prints a new key
 * once, alone on its last line. `--platform-admin` makes the first platform-admin key (every scope, every
 * tenant), which then manages the rest over `/v1/admin/keys`; the HTTP API never makes one.
 * `npm run keys:revoke -- <key | id | prefix>` revokes one. `npm run keys:list [-- --tenant <name>]`.
 * Works with or without the service running, on DATABASE_URL or the embedded database; the same
 * ApiKeyService as the HTTP API.
 */
export async function runKeysCli(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
  out: { write(s: string): unknown } = process.stdout,
  err: { write(s: string): unknown } = process.stderr,
): Promise<void> {
  const database = loadConfigClass(DatabaseConfig, env);
  const app = loadConfigClass(AppConfig, env);

  const withKeys = async (fn: (keys: ApiKeyService) => Promise<void>): Promise<void> => {
    const db = await openStandaloneDatabase(database, ENTITIES);
    try {
      err.write(`using ${db.via}\n`);
      await fn(new ApiKeyService(db.orm.em, app));
    } finally {
      await db.close();
    }
  };

  const program = new Command('keys')
    .description('Manage kvchat API keys')
    .showHelpAfterError()
    .exitOverride();
  program
    .command('create')
    .description('create an API key (and the tenant, if new); prints the key once, on the last line')
    .requiredOption('--tenant <name>', 'tenant the key belongs to')
    .option('--name <label>', 'a label for the key')
    .option('--scopes <list>', `comma-separated scopes (${SCOPES.join(', ')}); default: all but admin`, list)
    .option('--models <list>', 'comma-separated model allow-list; default: any model', list)
    .option('--rpm <n>', 'requests per minute', positiveInt)
    .option('--tpm <n>', 'tokens per minute', positiveInt)
    .option('--expires-at <iso>', 'expiry instant (ISO 8601)', instant)
    .option('--tokens-per-day <n>', 'token budget per UTC day', amount)
    .option('--tokens-per-month <n>', 'token budget per UTC month', amount)
    .option('--spend-per-day <usd>', 'spend budget per UTC day, USD', amount)
    .option('--spend-per-month <usd>', 'spend budget per UTC month, USD', amount)
    .option('--platform-admin', 'platform admin: every scope, every tenant (global stats, all keys)', false)
    .option('--admin', 'same as --platform-admin (kept for existing scripts)', false)
    .action((opts: CreateOptions) =>
      withKeys(async (keys) => {
        const budgets = {
          tokensPerDay: opts.tokensPerDay,
          tokensPerMonth: opts.tokensPerMonth,
          spendPerDay: opts.spendPerDay,
          spendPerMonth: opts.spendPerMonth,
        };
        const created = await keys.create(opts.tenant, {
          name: opts.name,
          admin: opts.platformAdmin || opts.admin,
          scopes: opts.scopes as Scope[] | undefined,
          models: opts.models,
          rpm: opts.rpm,
          tpm: opts.tpm,
          expiresAt: opts.expiresAt,
          budgets: Object.values(budgets).some((v) => v !== undefined) ? budgets : undefined,
        });
        out.write(
          `Created ${created.admin ? 'a platform-admin' : 'a'} key ${created.prefix}… (id ${created.keyId}) for tenant ` +
            `"${created.tenantName}" (${created.tenantId}), scopes ${created.record.scopes.join(',')}. ` +
            `It is shown once; store it now:\n${created.key}\n`,
        );
      }),
    );
  program
    .command('revoke')
    .description('revoke an API key, given in clear, by id, or by prefix')
    .argument('<key>', 'the key, its id, or its prefix')
    .action((key: string) =>
      withKeys(async (keys) => {
        const revoked = await keys.revoke(key);
        out.write(`Revoked key ${revoked.prefix}… (id ${revoked.id}).\n`);
      }),
    );
  program
    .command('list')
    .description('list API keys (never their secrets)')
    .option('--tenant <name>', 'only this tenant')
    .action((opts: { tenant?: string }) =>
      withKeys(async (keys) => {
        for (const k of await keys.list(opts.tenant)) {
          out.write(
            `${k.id}  ${k.prefix}…  tenant=${k.tenantName}  ${k.admin ? 'platform-admin ' : ''}scopes=${k.scopes.join(',')}  ${k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active'}\n`,
          );
        }
      }),
    );
  await program.parseAsync(argv);
}

if (require.main === module) {
  loadDotEnv();
  runKeysCli(process.argv).catch((e: unknown) => {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
