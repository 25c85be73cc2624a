import { Global, Module } from '@nestjs/common';
import { SUMMARY_SOURCE } from '../context/summaries/summary-source';
import { ConversationSummarySource } from './conversation-summary-source';

/**
 * Binds the ports that lower layers declare for a conversation's data: context's SUMMARY_SOURCE (the
 * messages the `summaries` job folds into a rolling summary). Global because the binding points
 * against the import direction: ContextModule cannot import the conversations module; a global module
 * makes the token visible to it without a cycle (as ConversationSummarizerModule does for the
 * summarizer). Import it once, in AppModule.
 */
@Global()
@Module({
  providers: [{ provide: SUMMARY_SOURCE, useClass: ConversationSummarySource }],
  exports: [SUMMARY_SOURCE],
})
export class ConversationPortsModule {}
