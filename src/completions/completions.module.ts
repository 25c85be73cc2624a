import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { CachingModule } from '../caching/caching.module';
import { InferenceModule } from '../inference/inference.module';
import { ChatCompletionsController } from './chat-completions.controller';
import { ChatCompletionsService } from './chat-completions.service';

/** OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models`, stateless, with the response cache. */
@Module({
  imports: [InferenceModule, CachingModule, AuthModule, IdempotencyModule],
  controllers: [ChatCompletionsController],
  providers: [ChatCompletionsService],
})
export class CompletionsModule {}
