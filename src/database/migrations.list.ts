import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261120233708 } from './migrations/Migration20261120233708';
import { Migration20261120234939 } from './migrations/Migration20261120234939';
import { Migration20261128102039 } from './migrations/Migration20261128102039';
import { Migration20261128102450 } from './migrations/Migration20261128102450';
import { Migration20261128144200 } from './migrations/Migration20261128144200';

/** Every committed migration, in order. `npm run migration:create` writes the file; add it here. */
export const MIGRATIONS: MigrationObject[] = [
  { name: 'Migration20261120233708', class: Migration20261120233708 },
  // Conversation summaries (rolling summaries of the `summary` context policy) and messages.prompt_content.
  { name: 'Migration20261120234939', class: Migration20261120234939 },
  // Knowledge bases, documents, ingestions and chunks (with a generated tsvector and its GIN index).
  { name: 'Migration20261128102039', class: Migration20261128102039 },
  // Key scopes, model allow-lists, expiry, rotation, limits and budgets; tenant limits; the usage ledger and its daily rollup.
  { name: 'Migration20261128102450', class: Migration20261128102450 },
  // Conversations bound to knowledge bases (knowledge_base_ids); citations on assistant messages.
  { name: 'Migration20261128144200', class: Migration20261128144200 },
];
