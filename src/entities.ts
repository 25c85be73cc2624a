import { ApiKey } from './auth/api-key.entity';
import { Tenant } from './auth/tenant.entity';
import { ConversationSummary } from './context/summaries/conversation-summary.entity';
import { Conversation } from './conversations/conversation.entity';
import { Message } from './conversations/message.entity';
import { Ingestion } from './knowledge/ingestion.entity';
import { KnowledgeBase } from './knowledge/knowledge-base.entity';
import { KnowledgeChunk } from './knowledge/knowledge-chunk.entity';
import { KnowledgeDocument } from './knowledge/knowledge-document.entity';
import { UsageDaily, UsageRollupState } from './usage/usage-daily.entity';
import { UsageRecord } from './usage/usage-record.entity';

/**
 * Every entity of the schema, listed once at the composition root for the app (`DatabaseModule.forRoot`),
 * the command-line tools, the MikroORM CLI and the tests. The database layer does not import the modules
 * that own the entities; a module that adds an entity adds it here.
 */
export const ENTITIES = [
  Tenant,
  ApiKey,
  Conversation,
  Message,
  ConversationSummary,
  KnowledgeBase,
  KnowledgeDocument,
  Ingestion,
  KnowledgeChunk,
  UsageRecord,
  UsageDaily,
  UsageRollupState,
];
