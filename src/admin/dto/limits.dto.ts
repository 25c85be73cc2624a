import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsNumber, IsOptional, Min } from 'class-validator';

/** Token and spend caps per UTC day and month; a field left out or null is no cap. */
export class BudgetsDto {
  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    minimum: 0,
    example: 1_000_000,
    description: 'Tokens per UTC day.',
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  tokensPerDay?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 0, description: 'Tokens per UTC month.' })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  tokensPerMonth?: number | null;

  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    minimum: 0,
    example: 5,
    description: 'USD per UTC day.',
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  spendPerDay?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 0, description: 'USD per UTC month.' })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  spendPerMonth?: number | null;
}
