import { Migration } from '@mikro-orm/migrations';

export class Migration20261120234939 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "conversation_summaries" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "tenant_id" uuid not null, "conversation_id" uuid not null, "through_sequence" int not null, "content" text not null, "token_count" int null, "template_version" varchar(100) not null, "model" varchar(200) null, constraint "conversation_summaries_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "conversation_summaries_tenant_id_conversation_id_t_21a81_index" on "conversation_summaries" ("tenant_id", "conversation_id", "through_sequence");`,
    );
    this.addSql(
      `alter table "conversation_summaries" add constraint "conversation_summaries_conversation_id_through_sequence_unique" unique ("conversation_id", "through_sequence");`,
    );

    this.addSql(
      `alter table "conversation_summaries" add constraint "conversation_summaries_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "conversation_summaries" add constraint "conversation_summaries_conversation_id_foreign" foreign key ("conversation_id") references "conversations" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(`alter table "messages" add column "prompt_content" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "conversation_summaries" cascade;`);

    this.addSql(`alter table "messages" drop column "prompt_content";`);
  }
}
