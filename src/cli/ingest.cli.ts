import 'reflect-metadata';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { EntityManager } from '@mikro-orm/postgresql';
import { type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Presets, SingleBar } from 'cli-progress';
import { Command, CommanderError } from 'commander';
import { Tenant } from '../auth/tenant.entity';
import { DomainError } from '../common/domain-error';
import { type Env, loadConfigClass } from '../config/config.loader';
import { KvchatConfigModule, loadDotEnv } from '../config/config.module';
import { DatabaseConfig } from '../config/database.config';
import { DatabaseModule } from '../database/database.module';
import { isPortOpen } from '../database/standalone';
import { EmbeddedEngineModule } from '../embedded-engine.module';
import { ENTITIES } from '../entities';
import { QueuesModule } from '../queues/queues.module';
import { SUPPORTED_EXTENSIONS } from '../knowledge/document-formats';
import { DocumentsService } from '../knowledge/documents.service';
import type { Ingestion } from '../knowledge/ingestion.entity';
import { KnowledgeBasesService } from '../knowledge/knowledge-bases.service';
import { KnowledgeModule } from '../knowledge/knowledge.module';

/** A file to upload, and the document name it gets. */
export interface IngestFile {
  path: string;
  name: string;
}

/**
 * The files named on the command line: a file as itself (named by its file name), a folder walked
 * recursively for the types the parser reads (named by their path inside the folder, with `/`).
 * @returns the files, and the files of other types found in folders (skipped)
 */
export function collectFiles(paths: readonly string[]): { files: IngestFile[]; skipped: string[] } {
  const files: IngestFile[] = [];
  const skipped: string[] = [];
  const walk = (root: string, dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(root, full);
      else if (!entry.isFile()) continue;
      else if (SUPPORTED_EXTENSIONS.includes(extname(entry.name).toLowerCase())) {
        files.push({ path: full, name: relative(root, full).split(sep).join('/') });
      } else skipped.push(full);
    }
  };
  for (const p of paths) {
    const full = resolve(p);
    if (statSync(full).isDirectory()) walk(full, full);
    else files.push({ path: full, name: basename(full) });
  }
  return { files, skipped };
}

/** The database, queues and knowledge services, without HTTP; its ingestion worker runs too. */
@Module({})
class IngestCliModule {
  static with(env: Env) {
    return {
      module: IngestCliModule,
      imports: [
        KvchatConfigModule.forRoot(env),
        DatabaseModule.forRoot(ENTITIES),
        EmbeddedEngineModule,
        QueuesModule,
        KnowledgeModule,
      ],
    };
  }
}

const out = (s: string): void => void process.stdout.write(s);

/**
 * `npm run knowledge:ingest -- --kb NAME [--tenant NAME] [--no-wait] PATH...`: uploads files and
 * folders into a tenant's knowledge base (created if missing) through the same validation and
 * queue as the API, then waits for every ingestion with a progress bar and prints each outcome.
 * Works with or without the service running: it uses DATABASE_URL, else the running service's
 * embedded database (EMBEDDED_DB_PORT), else the embedded data directory itself; its own worker
 * takes jobs too, so nothing else needs to run.
 * @returns the exit code: 0 when every document is ready, 1 otherwise
 */
export async function runIngestCli(argv: string[], env: Env = process.env): Promise<number> {
  const program = new Command('knowledge:ingest')
    .description('Ingest files and folders into a knowledge base')
    .requiredOption('--kb <name>', 'knowledge base name (created if missing)')
    .option('--tenant <name>', 'tenant (default: the only tenant, when there is one)')
    .option('--no-wait', 'queue the documents and exit without waiting for their ingestion')
    .argument('<paths...>', 'files and folders (folders are walked for .md, .txt, .html, .pdf)')
    .showHelpAfterError()
    .exitOverride();
  program.parse(argv);
  const opts = program.opts<{ kb: string; tenant?: string; wait: boolean }>();
  const { files, skipped } = collectFiles(program.args);

  const database = loadConfigClass(DatabaseConfig, env);
  const overrides: Env = { ...env };
  if (!database.DATABASE_URL) {
    if (database.EMBEDDED_DB_PORT > 0 && (await isPortOpen(database.EMBEDDED_DB_PORT))) {
      overrides.DATABASE_URL = `postgres://postgres@127.0.0.1:${database.EMBEDDED_DB_PORT}/postgres`;
    } else {
      overrides.EMBEDDED_DB_PORT = '0';
    }
  }
  const app: INestApplicationContext = await NestFactory.createApplicationContext(
    IngestCliModule.with(overrides),
    {
      logger: ['error', 'warn'],
    },
  );
  try {
    const em = app.get(EntityManager).fork();
    const tenants = await em.find(Tenant, opts.tenant ? { name: opts.tenant } : {}, { limit: 2 });
    if (tenants.length !== 1) {
      throw new Error(
        opts.tenant
          ? `no tenant named "${opts.tenant}": create it with npm run keys:create -- --tenant ${opts.tenant}`
          : 'name the tenant with --tenant (there is not exactly one)',
      );
    }
    const tenantId = tenants[0].id;
    const kb = await app.get(KnowledgeBasesService).ensure(tenantId, opts.kb);
    const documents = app.get(DocumentsService);
    out(`knowledge base "${kb.name}" (${kb.id}) of tenant "${tenants[0].name}": ${files.length} files`);
    out(skipped.length > 0 ? `, ${skipped.length} skipped (not ${SUPPORTED_EXTENSIONS.join(' ')})\n` : '\n');

    const queued: { name: string; ingestion: Ingestion }[] = [];
    let failed = 0;
    for (const file of files) {
      try {
        const { ingestion } = await documents.upload(tenantId, kb.id, {
          name: file.name,
          bytes: readFileSync(file.path),
        });
        queued.push({ name: file.name, ingestion });
      } catch (e) {
        if (!(e instanceof DomainError)) throw e;
        failed++;
        out(`refused  ${file.name}: ${e.message}\n`);
      }
    }
    if (!opts.wait) {
      out(`queued ${queued.filter((q) => q.ingestion.status === 'queued').length} documents; not waiting\n`);
      return failed > 0 ? 1 : 0;
    }

    const bar = new SingleBar(
      { format: 'ingesting [{bar}] {value}/{total} documents | {chunks} chunks | {name}', hideCursor: true },
      Presets.shades_classic,
    );
    bar.start(queued.length, 0, { chunks: 0, name: '' });
    const final = new Map<string, Ingestion>();
    while (final.size < queued.length) {
      let chunks = 0;
      let current = '';
      for (const q of queued) {
        const done = final.get(q.ingestion.id);
        if (done) {
          chunks += done.chunksTotal;
          continue;
        }
        const now = await documents.ingestion(tenantId, kb.id, q.ingestion.id);
        chunks += now.chunksDone;
        if (now.status === 'ready' || now.status === 'failed') final.set(now.id, now);
        else if (!current) current = `${q.name} (${now.status})`;
      }
      bar.update(final.size, { chunks, name: current });
      if (final.size < queued.length) await new Promise((r) => setTimeout(r, 200));
    }
    bar.stop();
    for (const q of queued) {
      const i = final.get(q.ingestion.id)!;
      if (i.status === 'ready') {
        out(
          `ready    ${q.name} v${i.version}: ${i.chunksTotal} chunks` +
            (i.unchanged
              ? ', unchanged'
              : `, ${i.chunksEmbedded} embedded in ${i.embeddingRequests} requests`) +
            '\n',
        );
      } else {
        failed++;
        out(`failed   ${q.name}: ${i.error}\n`);
      }
    }
    return failed > 0 ? 1 : 0;
  } finally {
    await app.close();
  }
}

if (require.main === module) {
  loadDotEnv();
  runIngestCli(process.argv).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof CommanderError) process.exit(e.exitCode);
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
