import { Body, Controller, Get, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthContext } from '../auth/api-key.service';
import { Auth, RequireScopes } from '../auth/auth.guard';
import { Forbidden } from '../auth/auth.errors';
import { TenantService } from '../auth/tenant.service';
import { ApiProblems } from '../common/api-problems.decorator';
import { scopeOf } from './admin-keys.service';
import { CreateTenantDto, TenantDto, TenantListDto, TenantSettingsDto } from './dto/tenant.dto';

/** @throws Forbidden unless the caller is the platform admin */
function platformOnly(auth: AuthContext): void {
  if (!auth.admin) throw new Forbidden('Only the platform admin may create tenants or change their limits.');
}

@ApiTags('admin')
@ApiBearerAuth()
@ApiProblems(401, 403, 429)
@RequireScopes('admin')
@Controller('v1/admin/tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantService) {}

  @Post()
  @ApiOperation({ summary: 'Create a tenant (platform admin)' })
  @ApiCreatedResponse({ type: TenantDto })
  @ApiProblems(400, 409)
  async create(@Auth() auth: AuthContext, @Body() body: CreateTenantDto): Promise<TenantDto> {
    platformOnly(auth);
    const { name, ...settings } = body;
    return TenantDto.from(await this.tenants.create(name, settings));
  }

  @Get()
  @ApiOperation({ summary: "List tenants (the caller's own; every tenant for the platform admin)" })
  @ApiOkResponse({ type: TenantListDto })
  async list(@Auth() auth: AuthContext): Promise<TenantListDto> {
    return { data: (await this.tenants.list(scopeOf(auth))).map((t) => TenantDto.from(t)) };
  }

  @Get(':tenant')
  @ApiOperation({ summary: 'Get a tenant by id or name' })
  @ApiOkResponse({ type: TenantDto })
  @ApiProblems(404)
  async get(@Auth() auth: AuthContext, @Param('tenant') tenant: string): Promise<TenantDto> {
    return TenantDto.from(await this.tenants.resolve(tenant, scopeOf(auth)));
  }

  @Patch(':tenant')
  @ApiOperation({
    summary: "Change a tenant's limits (platform admin)",
    description:
      'Fields left out are kept; null clears. Running replicas apply the change within API_KEY_CACHE_SECONDS.',
  })
  @ApiOkResponse({ type: TenantDto })
  @ApiProblems(400, 404)
  async update(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Body() body: TenantSettingsDto,
  ): Promise<TenantDto> {
    platformOnly(auth);
    return TenantDto.from(await this.tenants.update(tenant, body));
  }
}
