import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceConfig } from '../../config/inference.config';
import { ModelNotServed } from '../inference.errors';
import { CatalogueError, defaultCatalogue, parseCatalogue } from './model-catalogue';
import { ModelCatalogue } from './model-catalogue.service';

const YAML = `
models:
  chat:
    fallbacks: [claude, vllm-local]
    deployments:
      - id: openai-a
        provider: openai
        model: gpt-4o-mini
        baseURL: https://api.openai.com/v1/
        apiKeyEnv: OPENAI_API_KEY
        timeoutMs: 30000
        firstTokenTimeoutMs: 5000
        weight: 3
        rpm: 500
        tpm: 200000
        prices: { input: 0.15, cachedInput: 0.075, output: 0.6 }
      - id: azure-b
        provider: openai
        model: gpt-4o-mini
        baseURL: https://example.openai.azure.com/openai/v1
        weight: 1
  claude:
    deployments:
      - id: anthropic-a
        provider: anthropic
        model: claude-sonnet-4-5
        baseURL: https://api.anthropic.com
        prices: { input: 3, output: 15 }
  local:
    deployments:
      - id: vllm-local
        provider: vllm
        model: meta-llama/Llama-3.1-8B-Instruct
`;
const ENV = { OPENAI_API_KEY: 'sk-test' };

describe('model catalogue', () => {
  it('should parse deployments with defaults applied and the key read from the named variable', () => {
    const sut = parseCatalogue(YAML, 'models.yaml', ENV);

    expect(sut.models.map((m) => m.name)).toEqual(['chat', 'claude', 'local']);
    expect(sut.models[0].deployments[0]).toEqual({
      id: 'openai-a',
      publicModel: 'chat',
      provider: 'openai',
      model: 'gpt-4o-mini',
      baseURL: 'https://api.openai.com/v1',
      apiKey: 'sk-test',
      timeoutMs: 30000,
      firstTokenTimeoutMs: 5000,
      weight: 3,
      rpm: 500,
      tpm: 200000,
      prices: { input: 0.15, cachedInput: 0.075, output: 0.6 },
    });
    expect(sut.models[1].deployments[0].prices).toEqual({ input: 3, cachedInput: 3, output: 15 });
    expect(sut.models[2].deployments[0]).not.toHaveProperty('baseURL');
  });

  it('should fail naming every bad entry, the unset key variable and the unknown fallback', () => {
    const bad = `
models:
  chat:
    fallbacks: [nowhere]
    deployments:
      - provider: bedrock
        model: x
      - id: b
        provider: openai
        model: gpt
        apiKeyEnv: MISSING_KEY
      - id: b
        provider: anthropic
        model: claude
        baseURL: https://api.anthropic.com
        weight: -1
        colour: red
`;
    const error = (() => {
      try {
        parseCatalogue(bad, 'models.yaml', {});
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a CatalogueError');
    })();

    expect(error).toBeInstanceOf(CatalogueError);
    expect(error.message).toContain('models.chat.deployments[0].provider');
    expect(error.message).toContain('models.chat.deployments[2].weight');
    expect(error.message).toContain('models.chat.deployments[2].colour');
    const again = () =>
      parseCatalogue(
        bad.replace('provider: bedrock', 'provider: vllm').replace(/\n\s+weight: -1\n\s+colour: red/, ''),
        'models.yaml',
        {},
      );
    expect(again).toThrow(/models\.chat\.deployments\[1\]\.baseURL: required for provider openai/);
    expect(again).toThrow(
      /models\.chat\.deployments\[1\]\.apiKeyEnv: the environment variable MISSING_KEY is unset/,
    );
    expect(again).toThrow(/models\.chat\.deployments\[2\]\.id: `b` is used twice/);
    expect(again).toThrow(/models\.chat\.fallbacks\[0\]: `nowhere` is neither a model nor a deployment id/);
  });

  it('should refuse a file that is not YAML or has no models mapping, naming the file', () => {
    expect(() => parseCatalogue('models: [', 'x.yaml', {})).toThrow(/^x\.yaml: not valid YAML/);
    expect(() => parseCatalogue('models: [a]', 'x.yaml', {})).toThrow(/x\.yaml: `models` must be a mapping/);
  });

  it('should order targets: the first deployment drawn by weight, the others, then fallbacks once each', () => {
    const data = parseCatalogue(YAML, 'models.yaml', ENV);

    const ids = (random: number) => ModelCatalogue.targets(data, 'chat', random).map((d) => d.id);

    expect(ids(0)).toEqual(['openai-a', 'azure-b', 'anthropic-a', 'vllm-local']);
    expect(ids(0.74)).toEqual(['openai-a', 'azure-b', 'anthropic-a', 'vllm-local']);
    expect(ids(0.76)).toEqual(['azure-b', 'openai-a', 'anthropic-a', 'vllm-local']);
    expect(() => ModelCatalogue.targets(data, 'gpt-4o')).toThrow(ModelNotServed);
    expect(() => ModelCatalogue.targets(data, 'gpt-4o')).toThrow(
      /`gpt-4o` does not exist.*`chat`, `claude`, `local`/,
    );
  });

  it('should load MODEL_CATALOGUE_PATH at construction and price by model and provider', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvchat-catalogue-'));
    const path = join(dir, 'models.yaml');
    writeFileSync(path, YAML);
    const config = Object.assign(new InferenceConfig(), { MODEL_CATALOGUE_PATH: path });

    const sut = new ModelCatalogue(config, ENV);

    expect(sut.file?.source).toBe(path);
    expect(sut.priceOf('chat', 'openai')).toEqual({ input: 0.15, cachedInput: 0.075, output: 0.6 });
    expect(sut.priceOf('claude')).toEqual({ input: 3, cachedInput: 3, output: 15 });
    expect(sut.priceOf('local')).toBeNull();
    expect(
      () =>
        new ModelCatalogue(
          Object.assign(new InferenceConfig(), { MODEL_CATALOGUE_PATH: join(dir, 'none.yaml') }),
          {},
        ),
    ).toThrow(/MODEL_CATALOGUE_PATH=.*none\.yaml: cannot be read/);
  });

  it('should accept config/models.example.yaml (the documented example) with its keys set', () => {
    const text = readFileSync(join(__dirname, '../../../config/models.example.yaml'), 'utf8');

    const sut = parseCatalogue(text, 'config/models.example.yaml', {
      OPENAI_API_KEY: 'k',
      ANTHROPIC_API_KEY: 'k',
    });

    expect(sut.models.map((m) => m.name)).toEqual(['chat', 'claude']);
    expect(ModelCatalogue.targets(sut, 'chat', 0).map((d) => d.id)).toEqual([
      'vllm-pool',
      'openai-mini',
      'anthropic-sonnet',
    ]);
  });

  it('should default to one model on the engine replicas without a file', async () => {
    const sut = new ModelCatalogue(new InferenceConfig(), {});

    const data = await sut.data(() => Promise.resolve('kvchat-sim-llama'));

    expect(sut.file).toBeNull();
    expect(data).toEqual(defaultCatalogue('kvchat-sim-llama'));
    expect(data.models[0].deployments).toEqual([
      {
        id: 'engine',
        publicModel: 'kvchat-sim-llama',
        provider: 'vllm',
        model: 'kvchat-sim-llama',
        weight: 1,
      },
    ]);
  });
});
