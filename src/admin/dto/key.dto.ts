import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import type { ApiKeyWithTenant } from '../../auth/api-key.service';
import type { Budgets } from '../../auth/limits/limits.types';
import { type Scope, SCOPES } from '../../auth/scopes';
import { toBoolean } from '../../config/config.loader';
import { BudgetsDto } from './limits.dto';

/** Settings shared by create and update; on update a field left out is kept and null clears it. */
export class KeySettingsDto {
  @ApiPropertyOptional({ enum: SCOPES, isArray: true, example: ['chat', 'completions'] })
  @IsOptional()
  @IsArray()
  @IsIn(SCOPES, { each: true })
  scopes?: Scope[];

  @ApiPropertyOptional({
    type: [String],
    nullable: true,
    example: ['kvchat-sim'],
    description: 'Models the key may call; null = any.',
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @IsString({ each: true })
  @MinLength(1, { each: true })
  @MaxLength(200, { each: true })
  models?: string[] | null;

  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    minimum: 1,
    example: 60,
    description: 'Requests per minute.',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  rpm?: number | null;

  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    minimum: 1,
    example: 100_000,
    description: 'Tokens per minute.',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  tpm?: number | null;

  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'Expiry (ISO 8601).',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  expiresAt?: string | null;

  @ApiPropertyOptional({ type: BudgetsDto, nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => BudgetsDto)
  budgets?: BudgetsDto | null;
}

/** Body of `POST /v1/admin/keys`. */
export class CreateKeyDto extends KeySettingsDto {
  @ApiProperty({ maxLength: 200, example: 'billing-service' })
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  name!: string;

  @ApiPropertyOptional({
    description: "Tenant id or name; default the caller's. Another tenant needs the platform admin.",
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  tenant?: string;
}

/** Body of `PATCH /v1/admin/keys/{id}`. */
export class UpdateKeyDto extends KeySettingsDto {
  @ApiPropertyOptional({ type: String, nullable: true, maxLength: 200 })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  name?: string | null;
}

/** Body of `POST /v1/admin/keys/{id}/rotate`. */
export class RotateKeyDto {
  @ApiPropertyOptional({
    minimum: 0,
    maximum: 2_592_000,
    example: 3600,
    description: 'How long the old secret keeps working, seconds; default API_KEY_ROTATION_GRACE_SECONDS.',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(2_592_000)
  gracePeriodSeconds?: number;
}

/** Query of `GET /v1/admin/keys`. */
export class KeyListQueryDto {
  @ApiPropertyOptional({ description: 'Only this tenant (id or name); platform admin only.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  tenant?: string;

  @ApiPropertyOptional({ default: true, description: 'Include revoked keys.' })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  includeRevoked?: boolean;
}

/** An API key as the admin API shows it: never its secret or hash. */
export class KeyDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ type: String, nullable: true }) name!: string | null;
  @ApiProperty({ example: 'kvc_Xk3bq9Zr', description: 'First characters of the secret, to recognise it.' })
  prefix!: string;
  @ApiProperty({ format: 'uuid' }) tenantId!: string;
  @ApiProperty() tenant!: string;
  @ApiProperty({ enum: SCOPES, isArray: true }) scopes!: Scope[];
  @ApiProperty({ type: [String], nullable: true }) models!: string[] | null;
  @ApiProperty({ type: Number, nullable: true }) rpm!: number | null;
  @ApiProperty({ type: Number, nullable: true }) tpm!: number | null;
  @ApiProperty({ type: BudgetsDto, nullable: true }) budgets!: Budgets | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) expiresAt!: string | null;
  @ApiProperty({ description: 'Platform admin: every tenant. Made only by the CLI.' })
  platformAdmin!: boolean;
  @ApiProperty({ enum: ['active', 'expired', 'revoked'] }) status!: 'active' | 'expired' | 'revoked';
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) rotatedAt!: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'Until when the secret replaced by the last rotation still works.',
  })
  previousKeyExpiresAt!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) revokedAt!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;

  static from(k: ApiKeyWithTenant, now = new Date()): KeyDto {
    return {
      id: k.id,
      name: k.name,
      prefix: k.prefix,
      tenantId: k.tenantId,
      tenant: k.tenantName,
      scopes: k.scopes,
      models: k.models,
      rpm: k.rpm,
      tpm: k.tpm,
      budgets: k.budgets,
      expiresAt: k.expiresAt?.toISOString() ?? null,
      platformAdmin: k.admin,
      status: k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt <= now ? 'expired' : 'active',
      rotatedAt: k.rotatedAt?.toISOString() ?? null,
      previousKeyExpiresAt:
        k.previousKeyExpiresAt && k.previousKeyExpiresAt > now ? k.previousKeyExpiresAt.toISOString() : null,
      revokedAt: k.revokedAt?.toISOString() ?? null,
      createdAt: k.createdAt.toISOString(),
      updatedAt: k.updatedAt.toISOString(),
    };
  }
}

/** A key just created or rotated: the key object and its secret, shown this once. */
export class CreatedKeyDto extends KeyDto {
  @ApiProperty({ example: 'kvc_Xk3bq9Zr…', description: 'The secret. Shown once; only its hash is stored.' })
  key!: string;
}

/** `GET /v1/admin/keys`. */
export class KeyListDto {
  @ApiProperty({ type: [KeyDto] }) data!: KeyDto[];
}
