import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';

/** Which cached answers DELETE /v1/cache removes; the given fields combine. */
export class InvalidateCacheQueryDto {
  @ApiPropertyOptional({
    description:
      "Tenant id, or `*` for every tenant; another tenant than the key's needs an admin key. Default: the key's tenant.",
  })
  @IsOptional()
  @Matches(/^(\*|[0-9a-fA-F-]{36})$/, { message: 'tenantId must be a tenant id (uuid) or *' })
  tenantId?: string;

  @ApiPropertyOptional({ description: 'Only answers of this agent.', example: 'assistant' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  agent?: string;

  @ApiPropertyOptional({
    description: 'Only answers made with this prompt template version.',
    example: 'global@1+assistant@1',
  })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  templateVersion?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'One cached answer (its `cache.response.entryId`).' })
  @IsOptional()
  @IsUUID()
  entryId?: string;
}

export class CacheInvalidationDto {
  @ApiProperty({ description: 'Cached answers removed.' }) deleted!: number;
  @ApiProperty({ description: 'Tenants whose cache was touched.' }) tenants!: number;
}
