import { Migration } from '@mikro-orm/migrations';

export class Migration20261128102450 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "usage_daily" ("day" date not null, "tenant_id" uuid not null, "key_id" uuid not null, "model" varchar(200) not null, "endpoint" varchar(32) not null, "requests" bigint not null, "prompt_tokens" bigint not null, "cached_tokens" bigint not null, "completion_tokens" bigint not null, "avoided_tokens_exact" bigint not null, "avoided_tokens_semantic" bigint not null, "avoided_tokens_prefix" bigint not null, "cost" numeric(24,9) not null, "cost_avoided" numeric(24,9) not null, "latency_ms_sum" bigint not null, constraint "usage_daily_pkey" primary key ("day", "tenant_id", "key_id", "model", "endpoint"));`,
    );

    this.addSql(
      `create table "usage_records" ("id" uuid not null, "seq" bigint generated always as identity not null, "occurred_at" timestamptz(3) not null, "inserted_at" timestamptz(3) not null default now(), "tenant_id" uuid not null, "key_id" uuid not null, "request_id" varchar(128) not null, "conversation_id" uuid null, "endpoint" varchar(32) not null, "model" varchar(200) not null, "provider" varchar(64) null, "deployment" varchar(200) null, "prompt_tokens" int not null, "cached_tokens" int not null, "completion_tokens" int not null, "cache_layer" varchar(16) not null, "avoided_tokens_exact" int not null, "avoided_cost_exact" numeric(20,9) not null, "avoided_tokens_semantic" int not null, "avoided_cost_semantic" numeric(20,9) not null, "avoided_tokens_prefix" int not null, "avoided_cost_prefix" numeric(20,9) not null, "cost" numeric(20,9) not null, "cost_avoided" numeric(20,9) not null, "latency_ms" int not null, "ttft_ms" int null, constraint "usage_records_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "usage_records_seq_index" on "usage_records" ("seq");`);
    this.addSql(
      `create index "usage_records_tenant_id_occurred_at_index" on "usage_records" ("tenant_id", "occurred_at");`,
    );

    this.addSql(
      `create table "usage_rollup_state" ("id" smallint not null, "rolled_through_seq" bigint not null, "rolled_at" timestamptz(3) not null, constraint "usage_rollup_state_pkey" primary key ("id"));`,
    );

    this.addSql(
      `alter table "tenants" add column "rpm" int null, add column "tpm" int null, add column "budgets" jsonb null;`,
    );

    this.addSql(
      `alter table "api_keys" add column "scopes" text[] not null default '{}', add column "models" text[] null, add column "expires_at" timestamptz(3) null, add column "rpm" int null, add column "tpm" int null, add column "budgets" jsonb null, add column "previous_key_hash" varchar(64) null, add column "previous_key_expires_at" timestamptz(3) null, add column "rotated_at" timestamptz(3) null;`,
    );
    this.addSql(
      `alter table "api_keys" add constraint "api_keys_previous_key_hash_unique" unique ("previous_key_hash");`,
    );

    // Keys made before scopes existed keep doing what they did: every scope but `admin`; admin keys
    // (the old cross-tenant flag, now the platform admin) get every scope.
    this.addSql(
      `update "api_keys" set "scopes" = '{chat,completions,embeddings,knowledge:read,knowledge:write,usage:read}' where not "admin";`,
    );
    this.addSql(
      `update "api_keys" set "scopes" = '{chat,completions,embeddings,knowledge:read,knowledge:write,usage:read,admin}' where "admin";`,
    );
    // The rollup has folded nothing yet.
    this.addSql(
      `insert into "usage_rollup_state" ("id", "rolled_through_seq", "rolled_at") values (1, 0, now());`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "usage_daily" cascade;`);

    this.addSql(`drop table if exists "usage_records" cascade;`);

    this.addSql(`drop table if exists "usage_rollup_state" cascade;`);

    this.addSql(`alter table "api_keys" drop constraint "api_keys_previous_key_hash_unique";`);
    this.addSql(
      `alter table "api_keys" drop column "scopes", drop column "models", drop column "expires_at", drop column "rpm", drop column "tpm", drop column "budgets", drop column "previous_key_hash", drop column "previous_key_expires_at", drop column "rotated_at";`,
    );

    this.addSql(`alter table "tenants" drop column "rpm", drop column "tpm", drop column "budgets";`);
  }
}
