import { InvalidRequest } from '../../common/domain-error';
import { BUDGET_NAMES, type Budgets } from './limits.types';

/**
 * Checks limits given to the service layer (the CLI has no DTO validation in front of it).
 * @throws InvalidRequest naming the field
 */
export function validateLimits(settings: {
  rpm?: number | null;
  tpm?: number | null;
  budgets?: Budgets | null;
}): void {
  for (const field of ['rpm', 'tpm'] as const) {
    const v = settings[field];
    if (v !== undefined && v !== null && (!Number.isInteger(v) || v < 1)) {
      throw new InvalidRequest(`${field} must be a positive integer or null.`);
    }
  }
  if (settings.budgets) {
    for (const [name, v] of Object.entries(settings.budgets)) {
      if (!(BUDGET_NAMES as readonly string[]).includes(name)) {
        throw new InvalidRequest(`budgets.${name} is not a budget (${BUDGET_NAMES.join(', ')}).`);
      }
      if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
        throw new InvalidRequest(`budgets.${name} must be a number >= 0 or null.`);
      }
    }
  }
}
