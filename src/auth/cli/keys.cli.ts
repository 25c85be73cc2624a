import { Command, CommanderError } from 'commander';
import { AppConfig } from '../../config/app.config';
import { loadConfigClass } from '../../config/config.loader';
import { loadDotEnv } from '../../config/config.module';
import { DatabaseConfig } from '../../config/database.config';
import { openStandaloneDatabase } from '../../database/standalone';
import { ApiKeyService } from '../api-key.service';

/**
 * `npm run keys:create -- --tenant <name> [--name <label>] [--admin]` prints a new key once, alone on
 * its last line. `npm run keys:revoke -- <key | id | prefix>` revokes one. `npm run keys:list`.
 * Works with or without the service running, on DATABASE_URL or the embedded database.
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
    const db = await openStandaloneDatabase(database);
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
    .option('--admin', 'may read global stats and invalidate caches across tenants', false)
    .action((opts: { tenant: string; name?: string; admin: boolean }) =>
      withKeys(async (keys) => {
        const created = await keys.create(opts.tenant, { name: opts.name, admin: opts.admin });
        out.write(
          `Created ${created.admin ? 'an admin' : 'a'} key ${created.prefix}… (id ${created.keyId}) for tenant ` +
            `"${created.tenantName}" (${created.tenantId}). It is shown once; store it now:\n${created.key}\n`,
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
            `${k.id}  ${k.prefix}…  tenant=${k.tenantName}  ${k.admin ? 'admin ' : ''}${k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active'}\n`,
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
