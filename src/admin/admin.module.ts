import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { AdminKeysService } from './admin-keys.service';
import { KeysController } from './keys.controller';
import { TenantsController } from './tenants.controller';
import { UsageReportService } from './usage-report.service';
import { UsageController } from './usage.controller';

/**
 * The operators' and billing systems' HTTP surface: `/v1/admin/keys`, `/v1/admin/tenants` (`admin`
 * scope) and `GET /v1/usage` (`usage:read`). The ledger (UsageModule) is global.
 */
@Module({
  imports: [AuthModule],
  controllers: [KeysController, TenantsController, UsageController],
  providers: [AdminKeysService, UsageReportService],
})
export class AdminModule {}
