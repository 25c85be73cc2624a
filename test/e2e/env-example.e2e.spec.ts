import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { randomUUID } from 'node:crypto';
import { loadAllConfig } from '../../src/config/config.module';
import { deleteRedisPrefix } from '../factories/redis';
import { api, startTestApp, type TestApp } from '../factories/test-app';

/**
 * `config/.env.example` says: copy me to `.env`. This does exactly that, reads the copy with Node's
 * own dotenv parser (what `process.loadEnvFile` uses at boot) and boots on it.
 */
describe('config/.env.example copied to .env (e2e)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvchat-env-'));
  const prefix = `kvchat-test-${randomUUID()}:`;
  let sut: TestApp | undefined;

  afterAll(async () => {
    await sut?.close();
    // The prefix is the test's (it overrides the copied file's), so the test deletes its keys.
    await deleteRedisPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('should hold every default exactly as the configuration classes declare it', () => {
    copyFileSync(join(__dirname, '..', '..', 'config', '.env.example'), join(dir, '.env'));
    const fromFile = parseEnv(readFileSync(join(dir, '.env'), 'utf8'));

    const loaded = loadAllConfig(fromFile);

    for (const [cls, config] of loaded) expect({ [cls.name]: config }).toEqual({ [cls.name]: new cls() });
  });

  it('should boot on it and answer a turn', async () => {
    const fromFile = parseEnv(readFileSync(join(dir, '.env'), 'utf8'));
    // Only what would collide with other processes on a shared machine is changed.
    sut = await startTestApp({
      ...fromFile,
      DATA_DIR: 'memory://',
      EMBEDDED_DB_PORT: '0',
      REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: 'silent',
      // Not a collision: the simulator's calibrated real time would only make the turn slow.
      SIMULATOR_TIME_SCALE: '0',
    });
    const conversation = await api(`${sut.url}/v1/conversations`, { key: sut.keyA, body: { title: 'env' } });
    const turn = await api(`${sut.url}/v1/conversations/${conversation.body.id}/turns`, {
      key: sut.keyA,
      body: { content: 'Hello?' },
    });

    expect((await api(`${sut.url}/health/live`)).status).toBe(200);
    expect(turn.status).toBe(201);
  });
});
