import { MikroORM } from '@mikro-orm/core';
import { MikroOrmMiddleware, MikroOrmModule } from '@mikro-orm/nestjs';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import {
  type DynamicModule,
  Global,
  Inject,
  Injectable,
  Logger,
  type MiddlewareConsumer,
  Module,
  type NestModule,
  type OnApplicationShutdown,
  type OnModuleInit,
  RequestMethod,
} from '@nestjs/common';
import type { RouteInfo } from '@nestjs/common/interfaces';
import { registerDatabaseEndpoint } from '../common/dependency-errors';
import { DatabaseConfig } from '../config/database.config';
import { ProcessConfig } from '../config/process.config';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres';
import { buildOrmOptions, type EntityList, migratorOf } from './mikro-orm.options';

/** Where the ORM connects: an external server or the embedded PGlite started for this process. */
export interface DatabaseEndpoint {
  url: string;
  embedded: EmbeddedPostgres | null;
}
export const DATABASE_ENDPOINT = Symbol('DATABASE_ENDPOINT');

/** Closes the embedded database after the ORM has closed its pool. */
@Injectable()
export class EmbeddedDatabaseLifecycle implements OnApplicationShutdown {
  constructor(@Inject(DATABASE_ENDPOINT) private readonly endpoint: DatabaseEndpoint) {}
  async onApplicationShutdown(): Promise<void> {
    await this.endpoint.embedded?.close();
  }
}

@Global()
@Module({
  providers: [
    {
      provide: DATABASE_ENDPOINT,
      inject: [DatabaseConfig, ProcessConfig],
      useFactory: async (config: DatabaseConfig, process: ProcessConfig): Promise<DatabaseEndpoint> => {
        if (config.DATABASE_URL) {
          registerDatabaseEndpoint(config.DATABASE_URL);
          return { url: config.DATABASE_URL, embedded: null };
        }
        // The embedded database lives inside one process; an api and its workers must share one server.
        if (process.KVCHAT_ROLE !== 'all')
          throw new Error(
            `KVCHAT_ROLE=${process.KVCHAT_ROLE} needs DATABASE_URL: the embedded PGlite database belongs to one ` +
              'process, and api and worker processes must share a PostgreSQL server',
          );
        const embedded = await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_DB_PORT);
        new Logger('Database').log(
          `embedded PostgreSQL (PGlite + pgvector) on ${embedded.dataDir}, served at 127.0.0.1:${embedded.port}`,
        );
        registerDatabaseEndpoint(embedded.url);
        return { url: embedded.url, embedded };
      },
    },
    EmbeddedDatabaseLifecycle,
  ],
  exports: [DATABASE_ENDPOINT],
})
class DatabaseEndpointModule {}

/** Routes whose requests get no MikroORM request context (`DatabaseModule.forRoot`'s second argument). */
const ROUTES_WITHOUT_REQUEST_CONTEXT = Symbol('ROUTES_WITHOUT_REQUEST_CONTEXT');

/**
 * MikroORM over PostgreSQL: DATABASE_URL when set, else embedded PGlite with pgvector.
 * Pending migrations are applied at boot unless DB_MIGRATE_ON_BOOT=false.
 * Every HTTP request runs in its own MikroORM request context (a fork of the EntityManager:
 * `MikroOrmMiddleware`, registered here rather than by MikroOrmModule), except on the routes given to
 * `forRoot` that never use an entity.
 */
@Module({})
export class DatabaseModule implements OnModuleInit, NestModule {
  /**
   * @param entities every entity of the schema: `ENTITIES` from src/entities.ts (the composition root
   *   lists them, so the database layer imports no feature module)
   * @param withoutRequestContext routes that never touch an entity through the request's EntityManager
   *   (they may fork one, or use `em.getConnection()`): their requests skip the fork of the
   *   EntityManager (~0.3 ms of CPU each on /v1/chat/completions, docs/scaling.md); an entity method on
   *   the global EntityManager there throws MikroORM's "global context" error
   */
  static forRoot(entities: EntityList, withoutRequestContext: RouteInfo[] = []): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        DatabaseEndpointModule,
        MikroOrmModule.forRootAsync({
          driver: PostgreSqlDriver,
          inject: [DatabaseConfig, DATABASE_ENDPOINT],
          useFactory: (config: DatabaseConfig, endpoint: DatabaseEndpoint) => ({
            ...buildOrmOptions(endpoint.url, entities, {
              debug: config.DB_DEBUG,
              pool: { min: 0, max: endpoint.embedded ? 8 : config.DB_POOL_MAX },
            }),
            // Registered by DatabaseModule.configure, with the exclusions.
            registerRequestContext: false,
          }),
        }),
      ],
      providers: [{ provide: ROUTES_WITHOUT_REQUEST_CONTEXT, useValue: withoutRequestContext }],
      exports: [DatabaseEndpointModule],
    };
  }

  private readonly logger = new Logger(DatabaseModule.name);
  constructor(
    private readonly orm: MikroORM,
    private readonly config: DatabaseConfig,
    @Inject(ROUTES_WITHOUT_REQUEST_CONTEXT) private readonly withoutRequestContext: RouteInfo[],
  ) {}

  configure(consumer: MiddlewareConsumer): void {
    // '{*all}': every path, in Nest 11's syntax (as MikroOrmModule registers it).
    consumer
      .apply(MikroOrmMiddleware)
      .exclude(...this.withoutRequestContext)
      .forRoutes({ path: '{*all}', method: RequestMethod.ALL });
  }

  async onModuleInit(): Promise<void> {
    if (!this.config.DB_MIGRATE_ON_BOOT) return;
    const applied = await (await migratorOf(this.orm)).up();
    if (applied.length > 0) this.logger.log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
  }
}
