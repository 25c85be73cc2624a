import { Module } from '@nestjs/common';
import { PromptAssembler } from './prompt-assembler';

/** Prompt assembly, token counting and context-window policies. */
@Module({
  providers: [PromptAssembler],
  exports: [PromptAssembler],
})
export class ContextModule {}
