import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthContext } from '../auth/api-key.service';
import { Auth, RequireScopes } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import { AdminKeysService } from './admin-keys.service';
import {
  CreatedKeyDto,
  CreateKeyDto,
  KeyDto,
  KeyListDto,
  KeyListQueryDto,
  RotateKeyDto,
  UpdateKeyDto,
} from './dto/key.dto';

const uuid = new ParseUUIDPipe({ version: undefined });

@ApiTags('admin')
@ApiBearerAuth()
@ApiProblems(401, 403, 429)
@RequireScopes('admin')
@Controller('v1/admin/keys')
export class KeysController {
  constructor(private readonly keys: AdminKeysService) {}

  @Post()
  @ApiOperation({
    summary: 'Create an API key',
    description:
      "Creates a key for the caller's tenant (or `tenant`, platform admin only) and returns it with its secret in " +
      '`key`, shown this once. Without `scopes` the key gets every scope but `admin`.',
  })
  @ApiCreatedResponse({ type: CreatedKeyDto })
  @ApiProblems(400, 404)
  create(@Auth() auth: AuthContext, @Body() body: CreateKeyDto): Promise<CreatedKeyDto> {
    return this.keys.create(auth, body);
  }

  @Get()
  @ApiOperation({ summary: "List API keys (the caller's tenant; every tenant for the platform admin)" })
  @ApiOkResponse({ type: KeyListDto })
  @ApiProblems(400, 404)
  async list(@Auth() auth: AuthContext, @Query() query: KeyListQueryDto): Promise<KeyListDto> {
    return { data: await this.keys.list(auth, query) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get an API key' })
  @ApiOkResponse({ type: KeyDto })
  @ApiProblems(400, 404)
  get(@Auth() auth: AuthContext, @Param('id', uuid) id: string): Promise<KeyDto> {
    return this.keys.get(auth, id);
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Change an API key',
    description:
      'Fields left out are kept; null clears (no model allow-list, no limit, no expiry). Running replicas apply ' +
      'the change within API_KEY_CACHE_SECONDS.',
  })
  @ApiOkResponse({ type: KeyDto })
  @ApiProblems(400, 404)
  update(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Body() body: UpdateKeyDto,
  ): Promise<KeyDto> {
    return this.keys.update(auth, id, body);
  }

  @Post(':id/revoke')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Revoke an API key',
    description:
      'Immediate on the replica that answers; every replica refuses the key within API_KEY_CACHE_SECONDS (default 5 s).',
  })
  @ApiOkResponse({ type: KeyDto })
  @ApiProblems(400, 404)
  revoke(@Auth() auth: AuthContext, @Param('id', uuid) id: string): Promise<KeyDto> {
    return this.keys.revoke(auth, id);
  }

  @Post(':id/rotate')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Rotate an API key',
    description:
      'Gives the key a new secret (in `key`, shown once). The old secret keeps working for `gracePeriodSeconds` ' +
      '(default API_KEY_ROTATION_GRACE_SECONDS). The key keeps its id, settings, budgets and usage.',
  })
  @ApiOkResponse({ type: CreatedKeyDto })
  @ApiProblems(400, 404)
  rotate(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Body() body: RotateKeyDto,
  ): Promise<CreatedKeyDto> {
    return this.keys.rotate(auth, id, body.gracePeriodSeconds);
  }
}
