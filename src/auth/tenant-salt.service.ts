import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app.config';
import { DatabaseConfig } from '../config/database.config';

/**
 * Derives the engine's `cache_salt` for a tenant: HMAC-SHA256(server secret, tenant id), base64url.
 * vLLM mixes the salt into the hash of the first KV block, so two tenants never share cached
 * blocks even for byte-identical prompts (vLLM docs, "Automatic Prefix Caching", cache salting).
 * The salt is server-derived only; clients can never supply one.
 */
@Injectable()
export class TenantSaltService {
  private readonly secret: string;

  constructor(app: AppConfig, database: DatabaseConfig) {
    this.secret = app.SERVER_SECRET ?? TenantSaltService.localSecret(database.DATA_DIR);
  }

  /** The cache salt for `tenantId` (43 characters). */
  saltFor(tenantId: string): string {
    return createHmac('sha256', this.secret).update(`cache_salt:${tenantId}`).digest('base64url');
  }

  /** A random secret kept in DATA_DIR/server-secret (created once), for single-machine setups. */
  private static localSecret(dataDir: string): string {
    if (dataDir === 'memory://') return randomBytes(32).toString('hex');
    const path = join(dataDir, 'server-secret');
    if (!existsSync(path)) {
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(path, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
      new Logger(TenantSaltService.name).warn(`SERVER_SECRET is unset: generated one in ${path}`);
    }
    return readFileSync(path, 'utf8').trim();
  }
}
