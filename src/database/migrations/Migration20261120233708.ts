import { Migration } from '@mikro-orm/migrations';

export class Migration20261120233708 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "tenants" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "name" varchar(200) not null, constraint "tenants_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "tenants" add constraint "tenants_name_unique" unique ("name");`);

    this.addSql(
      `create table "conversations" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "tenant_id" uuid not null, "title" varchar(500) null, "metadata" jsonb not null, "agent" varchar(100) null, "message_count" int not null default 0, "last_turn_at" timestamptz(3) null, "context" jsonb null, constraint "conversations_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "conversations_tenant_id_created_at_id_index" on "conversations" ("tenant_id", "created_at", "id");`,
    );

    this.addSql(
      `create table "messages" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "tenant_id" uuid not null, "conversation_id" uuid not null, "sequence" int not null, "role" text check ("role" in ('system', 'user', 'assistant')) not null, "content" text not null, "status" text check ("status" in ('complete', 'failed')) not null default 'complete', "error" jsonb null, "token_count" int null, "model" varchar(200) null, "usage" jsonb null, "timings" jsonb null, "cache" jsonb null, "route" jsonb null, "template_version" varchar(100) null, "replica" varchar(300) null, "finish_reason" varchar(50) null, constraint "messages_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "messages_tenant_id_conversation_id_sequence_index" on "messages" ("tenant_id", "conversation_id", "sequence");`,
    );
    this.addSql(
      `alter table "messages" add constraint "messages_conversation_id_sequence_unique" unique ("conversation_id", "sequence");`,
    );

    this.addSql(
      `create table "api_keys" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "tenant_id" uuid not null, "key_hash" varchar(64) not null, "prefix" varchar(16) not null, "name" varchar(200) null, "admin" boolean not null default false, "revoked_at" timestamptz(3) null, "last_used_at" timestamptz(3) null, constraint "api_keys_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "api_keys_tenant_id_index" on "api_keys" ("tenant_id");`);
    this.addSql(`alter table "api_keys" add constraint "api_keys_key_hash_unique" unique ("key_hash");`);

    this.addSql(
      `alter table "conversations" add constraint "conversations_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "messages" add constraint "messages_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "messages" add constraint "messages_conversation_id_foreign" foreign key ("conversation_id") references "conversations" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "api_keys" add constraint "api_keys_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "messages" cascade;`);
    this.addSql(`drop table if exists "conversations" cascade;`);
    this.addSql(`drop table if exists "api_keys" cascade;`);
    this.addSql(`drop table if exists "tenants" cascade;`);
  }
}
