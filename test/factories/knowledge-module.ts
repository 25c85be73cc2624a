import { randomUUID } from 'node:crypto';
import { EntityManager } from '@mikro-orm/postgresql';
import { Test, type TestingModule } from '@nestjs/testing';
import { Tenant } from '../../src/auth/tenant.entity';
import type { Env } from '../../src/config/config.loader';
import { KvchatConfigModule } from '../../src/config/config.module';
import { DatabaseModule } from '../../src/database/database.module';
import { ENTITIES } from '../../src/entities';
import { EmbeddingsUnavailable } from '../../src/inference/embeddings.errors';
import { EmbeddingsService } from '../../src/inference/embeddings.service';
import { DocumentsService } from '../../src/knowledge/documents.service';
import type { Ingestion } from '../../src/knowledge/ingestion.entity';
import { KnowledgeModule } from '../../src/knowledge/knowledge.module';
import { QueuesModule } from '../../src/queues/queues.module';
import { lexicalEmbedding } from '../../src/common/lexical-embedding';
import { deleteRedisPrefix } from './redis';

/**
 * Embeddings the test controls: the simulator's lexical vectors (64 dimensions); ingestion's batches
 * (`embedMany`) wait behind a gate that the test can close, and fail while `failNext` > 0, as an
 * unreachable server would.
 */
export class ControlledEmbeddings {
  calls = 0;
  texts = 0;
  failNext = 0;
  private gate: Promise<void> = Promise.resolve();
  private release?: () => void;
  /** Resolves when a call is waiting at the closed gate. */
  waiting: Promise<void> = Promise.resolve();
  private arrived?: () => void;

  describe() {
    return Promise.resolve({ model: 'test-lexical', dimension: 64, baseURL: 'memory://' });
  }

  /** Holds every following call until `open()`. */
  close(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
    this.waiting = new Promise((resolve) => (this.arrived = resolve));
  }

  open(): void {
    this.release?.();
  }

  async embedMany(texts: readonly string[]): Promise<number[][]> {
    this.calls += 1;
    this.texts += texts.length;
    this.arrived?.();
    await this.gate;
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new EmbeddingsUnavailable('No embeddings server answered: connect ECONNREFUSED (test)');
    }
    return texts.map((t) => lexicalEmbedding(t, 64));
  }

  /** Query embeddings (retrieval) pass the gate: only ingestion's batches are held. */
  embed(text: string): Promise<number[]> {
    this.calls += 1;
    this.texts += 1;
    return Promise.resolve(lexicalEmbedding(text, 64));
  }
}

/** The knowledge module on a real database and the local Redis, with controlled embeddings. */
export interface KnowledgeHarness {
  module: TestingModule;
  embeddings: ControlledEmbeddings;
  tenantA: string;
  tenantB: string;
  /** Polls an ingestion until it is ready or failed (a deadline, not a fixed sleep). */
  settled(tenantId: string, knowledgeBaseId: string, ingestionId: string): Promise<Ingestion>;
  /** Polls an ingestion until `predicate` holds. */
  until(
    tenantId: string,
    knowledgeBaseId: string,
    ingestionId: string,
    predicate: (i: Ingestion) => boolean,
  ): Promise<Ingestion>;
  close(): Promise<void>;
}

/** Boots config, database (PGlite in memory unless `env.DATABASE_URL`), queues and the knowledge module. */
export async function startKnowledgeHarness(env: Env = {}): Promise<KnowledgeHarness> {
  const embeddings = new ControlledEmbeddings();
  const prefix = `kvchat-test-${randomUUID()}:`;
  const module = await Test.createTestingModule({
    imports: [
      KvchatConfigModule.forRoot({
        DATA_DIR: 'memory://',
        EMBEDDED_DB_PORT: '0',
        REDIS_KEY_PREFIX: prefix,
        QUEUE_JOB_BACKOFF_MS: '10',
        EMBEDDINGS_BATCH_SIZE: '4',
        INFERENCE_ENDPOINTS: 'http://127.0.0.1:9/v1',
        ...env,
      }),
      DatabaseModule.forRoot(ENTITIES),
      QueuesModule,
      KnowledgeModule,
    ],
  })
    .overrideProvider(EmbeddingsService)
    .useValue(embeddings)
    .compile();
  if (!process.env.KNOWLEDGE_TEST_LOGS) module.useLogger(false);
  await module.init();
  const em = module.get(EntityManager).fork();
  const a = em.create(Tenant, { name: `knowledge-a-${randomUUID()}` });
  const b = em.create(Tenant, { name: `knowledge-b-${randomUUID()}` });
  await em.flush();
  const documents = module.get(DocumentsService);
  const until: KnowledgeHarness['until'] = async (tenantId, kbId, ingestionId, predicate) => {
    const deadline = Date.now() + 45_000;
    for (;;) {
      const ingestion = await documents.ingestion(tenantId, kbId, ingestionId);
      if (predicate(ingestion)) return ingestion;
      if (Date.now() > deadline) throw new Error(`ingestion ${ingestionId} stuck at ${ingestion.status}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return {
    module,
    embeddings,
    tenantA: a.id,
    tenantB: b.id,
    until,
    settled: (tenantId, kbId, id) =>
      until(tenantId, kbId, id, (i) => i.status === 'ready' || i.status === 'failed'),
    close: async () => {
      embeddings.open();
      await module.close();
      await deleteRedisPrefix(prefix);
    },
  };
}
