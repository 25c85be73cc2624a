import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min, MinLength, ValidateNested } from 'class-validator';
import type { Budgets } from '../../auth/limits/limits.types';
import type { Tenant } from '../../auth/tenant.entity';
import { BudgetsDto } from './limits.dto';

/** A tenant's limits (over all its keys); on update a field left out is kept and null clears it. */
export class TenantSettingsDto {
  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 1, description: 'Requests per minute.' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  rpm?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 1, description: 'Tokens per minute.' })
  @IsOptional()
  @IsInt()
  @Min(1)
  tpm?: number | null;

  @ApiPropertyOptional({ type: BudgetsDto, nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => BudgetsDto)
  budgets?: BudgetsDto | null;
}

/** Body of `POST /v1/admin/tenants`. */
export class CreateTenantDto extends TenantSettingsDto {
  @ApiProperty({ maxLength: 200, example: 'acme' })
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  name!: string;
}

/** A tenant as the admin API shows it. */
export class TenantDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ type: Number, nullable: true }) rpm!: number | null;
  @ApiProperty({ type: Number, nullable: true }) tpm!: number | null;
  @ApiProperty({ type: BudgetsDto, nullable: true }) budgets!: Budgets | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;

  static from(t: Tenant): TenantDto {
    return {
      id: t.id,
      name: t.name,
      rpm: t.rpm,
      tpm: t.tpm,
      budgets: t.budgets,
      createdAt: t.createdAt.toISOString(),
      updatedAt: t.updatedAt.toISOString(),
    };
  }
}

/** `GET /v1/admin/tenants`. */
export class TenantListDto {
  @ApiProperty({ type: [TenantDto] }) data!: TenantDto[];
}
