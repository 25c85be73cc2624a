import { Migration } from '@mikro-orm/migrations';

export class Migration20261128144200 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "conversations" add column "knowledge_base_ids" jsonb not null default '[]';`);

    this.addSql(`alter table "messages" add column "citations" jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "conversations" drop column "knowledge_base_ids";`);

    this.addSql(`alter table "messages" drop column "citations";`);
  }
}
