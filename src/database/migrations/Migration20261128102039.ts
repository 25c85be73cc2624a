import { Migration } from '@mikro-orm/migrations';

export class Migration20261128102039 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "knowledge_bases" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "tenant_id" uuid not null, "name" varchar(200) not null, "description" text null, constraint "knowledge_bases_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "knowledge_bases_tenant_id_index" on "knowledge_bases" ("tenant_id");`);
    this.addSql(
      `alter table "knowledge_bases" add constraint "knowledge_bases_tenant_id_name_unique" unique ("tenant_id", "name");`,
    );

    this.addSql(
      `create table "knowledge_documents" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "tenant_id" uuid not null, "knowledge_base_id" uuid not null, "name" varchar(500) not null, "content_type" varchar(100) not null, "title" varchar(500) null, "version" int not null default 0, "status" text check ("status" in ('queued', 'parsing', 'embedding', 'ready', 'failed')) not null default 'queued', "content_hash" varchar(64) null, "source_hash" varchar(64) null, "size_bytes" int null, "chunk_count" int not null default 0, "error" text null, "latest_ingestion_id" uuid null, constraint "knowledge_documents_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "knowledge_documents_tenant_id_knowledge_base_id_index" on "knowledge_documents" ("tenant_id", "knowledge_base_id");`,
    );
    this.addSql(
      `alter table "knowledge_documents" add constraint "knowledge_documents_knowledge_base_id_name_unique" unique ("knowledge_base_id", "name");`,
    );

    this.addSql(
      `create table "knowledge_chunks" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "tenant_id" uuid not null, "knowledge_base_id" uuid not null, "document_id" uuid not null, "ordinal" int not null, "heading_path" jsonb not null, "heading" text not null, "start_offset" int not null, "end_offset" int not null, "text" text not null, "token_count" int not null, "content_hash" varchar(64) not null, "version" int not null, "tsv" tsvector generated always as (setweight(to_tsvector('english'::regconfig, heading), 'A'::"char") || setweight(to_tsvector('english'::regconfig, text), 'B'::"char")) stored null, constraint "knowledge_chunks_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "knowledge_chunks_tsv_index" on "knowledge_chunks" using gin ("tsv");`);
    this.addSql(
      `create index "knowledge_chunks_document_id_ordinal_index" on "knowledge_chunks" ("document_id", "ordinal");`,
    );
    this.addSql(
      `create index "knowledge_chunks_tenant_id_knowledge_base_id_index" on "knowledge_chunks" ("tenant_id", "knowledge_base_id");`,
    );

    this.addSql(
      `create table "knowledge_ingestions" ("id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "tenant_id" uuid not null, "knowledge_base_id" uuid not null, "document_id" uuid not null, "status" text check ("status" in ('queued', 'parsing', 'embedding', 'ready', 'failed')) not null default 'queued', "content_type" varchar(100) not null, "source_hash" varchar(64) not null, "size_bytes" int not null, "source" bytea null, "chunks_total" int not null default 0, "chunks_done" int not null default 0, "chunks_embedded" int not null default 0, "embedding_requests" int not null default 0, "attempts" int not null default 0, "version" int null, "unchanged" boolean not null default false, "error" text null, "started_at" timestamptz(3) null, "finished_at" timestamptz(3) null, constraint "knowledge_ingestions_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "knowledge_ingestions_document_id_index" on "knowledge_ingestions" ("document_id");`,
    );
    this.addSql(
      `create index "knowledge_ingestions_tenant_id_knowledge_base_id_index" on "knowledge_ingestions" ("tenant_id", "knowledge_base_id");`,
    );

    this.addSql(
      `alter table "knowledge_bases" add constraint "knowledge_bases_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "knowledge_documents" add constraint "knowledge_documents_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "knowledge_documents" add constraint "knowledge_documents_knowledge_base_id_foreign" foreign key ("knowledge_base_id") references "knowledge_bases" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "knowledge_chunks" add constraint "knowledge_chunks_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "knowledge_chunks" add constraint "knowledge_chunks_knowledge_base_id_foreign" foreign key ("knowledge_base_id") references "knowledge_bases" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "knowledge_chunks" add constraint "knowledge_chunks_document_id_foreign" foreign key ("document_id") references "knowledge_documents" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "knowledge_ingestions" add constraint "knowledge_ingestions_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "knowledge_ingestions" add constraint "knowledge_ingestions_knowledge_base_id_foreign" foreign key ("knowledge_base_id") references "knowledge_bases" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "knowledge_ingestions" add constraint "knowledge_ingestions_document_id_foreign" foreign key ("document_id") references "knowledge_documents" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(
      `alter table "knowledge_documents" drop constraint "knowledge_documents_knowledge_base_id_foreign";`,
    );

    this.addSql(
      `alter table "knowledge_chunks" drop constraint "knowledge_chunks_knowledge_base_id_foreign";`,
    );

    this.addSql(
      `alter table "knowledge_ingestions" drop constraint "knowledge_ingestions_knowledge_base_id_foreign";`,
    );

    this.addSql(`alter table "knowledge_chunks" drop constraint "knowledge_chunks_document_id_foreign";`);

    this.addSql(
      `alter table "knowledge_ingestions" drop constraint "knowledge_ingestions_document_id_foreign";`,
    );

    this.addSql(`drop table if exists "knowledge_bases" cascade;`);

    this.addSql(`drop table if exists "knowledge_documents" cascade;`);

    this.addSql(`drop table if exists "knowledge_chunks" cascade;`);

    this.addSql(`drop table if exists "knowledge_ingestions" cascade;`);
  }
}
