import { Inject, Injectable, Optional } from '@nestjs/common';
import { CONFIG_ENV, type Env } from '../../config/config.loader';
import { InferenceConfig } from '../../config/inference.config';
import { ModelNotServed } from '../inference.errors';
import {
  type CatalogueModel,
  defaultCatalogue,
  type Deployment,
  loadCatalogueFile,
  MODEL_CATALOGUE,
  type ModelCatalogueData,
} from './model-catalogue';

/**
 * The model catalogue: the file at MODEL_CATALOGUE_PATH, validated at boot (a bad entry fails the boot
 * with its path, e.g. `models.chat.deployments[1].baseURL`), or — without a file — today's single model
 * on the engine replicas, whose name `resolveDefault` supplies once the engine is asked.
 */
@Injectable()
export class ModelCatalogue {
  /** The catalogue file's content; null when MODEL_CATALOGUE_PATH is unset. */
  readonly file: ModelCatalogueData | null;

  /**
   * @param given a catalogue bound directly (MODEL_CATALOGUE: tests, tools); wins over the file
   * @throws CatalogueError naming the file and each bad entry
   */
  constructor(
    config: InferenceConfig,
    @Optional() @Inject(CONFIG_ENV) env?: Env,
    @Optional() @Inject(MODEL_CATALOGUE) given?: ModelCatalogueData | null,
  ) {
    this.file =
      given ??
      (config.MODEL_CATALOGUE_PATH
        ? loadCatalogueFile(config.MODEL_CATALOGUE_PATH, env ?? process.env)
        : null);
  }

  /**
   * The catalogue in force: the file, or the default one over `engineModel()` (INFERENCE_MODEL or the
   * first model the engine lists).
   */
  async data(engineModel: () => Promise<string>): Promise<ModelCatalogueData> {
    return this.file ?? defaultCatalogue(await engineModel());
  }

  /** The public model names, in catalogue order. */
  static names(data: ModelCatalogueData): string[] {
    return data.models.map((m) => m.name);
  }

  /** @throws ModelNotServed naming the model and the served ones */
  static model(data: ModelCatalogueData, name: string): CatalogueModel {
    const found = data.models.find((m) => m.name === name);
    if (!found) {
      const served = ModelCatalogue.names(data);
      throw new ModelNotServed(
        `The model \`${name}\` does not exist. This server serves ${served.map((n) => `\`${n}\``).join(', ')} (GET /v1/models).`,
        { model: name, served },
      );
    }
    return found;
  }

  /**
   * The ordered targets for `name`: its deployments (the first one drawn by weight, the rest in file
   * order), then each fallback (a deployment id: that deployment; a model name: its deployments, not its
   * own fallbacks), each deployment at most once.
   * @param random in [0, 1), for the weighted draw
   */
  static targets(data: ModelCatalogueData, name: string, random: number = Math.random()): Deployment[] {
    const model = ModelCatalogue.model(data, name);
    const out: Deployment[] = [];
    const add = (d: Deployment): void => {
      if (!out.some((o) => o.id === d.id)) out.push(d);
    };
    for (const d of weightedOrder(model.deployments, random)) add(d);
    for (const f of model.fallbacks) {
      const other = data.models.find((m) => m.name === f);
      if (other) for (const d of other.deployments) add(d);
      else {
        const d = data.models.flatMap((m) => m.deployments).find((x) => x.id === f);
        if (d) add(d);
      }
    }
    return out;
  }

  /** The deployment's prices for the usage ledger (by public model, then by provider when given). */
  priceOf(model: string, provider?: string | null): Deployment['prices'] | null {
    const m = this.file?.models.find((x) => x.name === model);
    if (!m) return null;
    const withPrice = m.deployments.filter((d) => d.prices);
    const d =
      withPrice.find((x) => !provider || x.provider === provider || x.id === provider) ?? withPrice[0];
    return d?.prices ?? null;
  }
}

/** Deployments with the first one drawn by weight (weight 0 = only as a fallback), the others in order. */
function weightedOrder(deployments: readonly Deployment[], random: number): Deployment[] {
  const total = deployments.reduce((s, d) => s + d.weight, 0);
  if (deployments.length < 2 || total <= 0) return [...deployments];
  let pick = random * total;
  const first = deployments.find((d) => (pick -= d.weight) < 0) ?? deployments[deployments.length - 1];
  return [first, ...deployments.filter((d) => d !== first)];
}
