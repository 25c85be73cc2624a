import { Migration } from '@mikro-orm/migrations';

/** A tenant's month of the daily rollup is read by (tenant, day), not by a scan of every tenant's days. */
export class Migration20261128150000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index "usage_daily_tenant_id_day_index" on "usage_daily" ("tenant_id", "day");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "usage_daily_tenant_id_day_index";`);
  }
}
