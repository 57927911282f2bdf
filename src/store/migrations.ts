// The one schema, shared by PGlite and PostgreSQL. Append new migrations; never edit an applied one.
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'credentials, secrets and state nonces',
    sql: `
      CREATE TABLE credentials (
        ref text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('account', 'service_account')),
        sub text NOT NULL,
        access_token_enc text NOT NULL,
        refresh_token_enc text,
        access_token_expires_at timestamptz,
        scope text,
        provider_name text,
        provider_service text,
        profile_id text,
        profile_name text,
        label text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      );
      CREATE INDEX credentials_sub_idx ON credentials (sub);

      CREATE TABLE secrets (
        ref text PRIMARY KEY,
        purpose text NOT NULL,
        value_enc text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX secrets_expires_at_idx ON secrets (expires_at);

      CREATE TABLE state_nonces (
        nonce text PRIMARY KEY,
        consumed_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX state_nonces_expires_at_idx ON state_nonces (expires_at);
    `,
  },
  {
    version: 2,
    name: 'enterprise downgrades: captured users and their outcomes',
    sql: `
      CREATE TABLE enterprise_users (
        capture_id text NOT NULL,
        position integer NOT NULL,
        email text NOT NULL,
        PRIMARY KEY (capture_id, position)
      );

      CREATE TABLE enterprise_user_outcomes (
        capture_id text NOT NULL,
        email text NOT NULL,
        state text NOT NULL,
        reason text,
        credential_ref text,
        attempts integer NOT NULL DEFAULT 1,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (capture_id, email)
      );
      CREATE INDEX enterprise_user_outcomes_state_idx ON enterprise_user_outcomes (capture_id, state);
    `,
  },
  {
    version: 3,
    name: 'the grant each credential came from, so an exchange retried after a crash finds its result',
    sql: `
      ALTER TABLE credentials ADD COLUMN grant_key text;
      CREATE UNIQUE INDEX credentials_grant_key_idx ON credentials (grant_key);
    `,
  },
  {
    version: 4,
    name: 'previews of enterprise downgrades, each bound to one capture of users',
    sql: `
      CREATE TABLE previews (
        preview_id text PRIMARY KEY,
        domain text NOT NULL,
        capture_id text NOT NULL,
        service_account_ref text,
        service_account_sub text,
        preview jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 5,
    name: 'campaigns of Individual downgrades: their users and outcomes; previews of either kind',
    sql: `
      CREATE TABLE campaign_users (
        capture_id text NOT NULL,
        position integer NOT NULL,
        sub text NOT NULL,
        user_id text,
        credential_ref text,
        PRIMARY KEY (capture_id, position)
      );

      CREATE TABLE campaign_user_outcomes (
        capture_id text NOT NULL,
        sub text NOT NULL,
        state text NOT NULL,
        reason text,
        provider_name text,
        credential_ref text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (capture_id, sub)
      );
      CREATE INDEX campaign_user_outcomes_state_idx ON campaign_user_outcomes (capture_id, state);

      ALTER TABLE previews ADD COLUMN kind text NOT NULL DEFAULT 'enterprise';
    `,
  },
  {
    version: 6,
    name: 'notifications: every event for the application or a person, its delivery and its attempts; emails',
    sql: `
      CREATE TABLE notifications (
        event_id text NOT NULL,
        channel text NOT NULL CHECK (channel IN ('webhook', 'email')),
        stream text NOT NULL,
        seq bigserial,
        event_type text NOT NULL,
        body text NOT NULL,
        recipient text,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        locked_until timestamptz,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz,
        PRIMARY KEY (event_id, channel)
      );
      CREATE INDEX notifications_undelivered_idx ON notifications (stream, channel, seq) WHERE status <> 'delivered';

      CREATE TABLE notification_attempts (
        id bigserial PRIMARY KEY,
        event_id text NOT NULL,
        channel text NOT NULL,
        attempted_at timestamptz NOT NULL DEFAULT now(),
        outcome text NOT NULL,
        status_code integer,
        error text
      );
      CREATE INDEX notification_attempts_event_idx ON notification_attempts (event_id, channel);

      CREATE TABLE webhook_endpoints (
        url text PRIMARY KEY,
        disabled_at timestamptz,
        disabled_reason text
      );

      ALTER TABLE campaign_users ADD COLUMN email text;
    `,
  },
  {
    version: 7,
    name: 'the HTTP API: its keys (a hash of each secret) and its idempotent requests (a hash of each body)',
    sql: `
      CREATE TABLE api_keys (
        id text PRIMARY KEY,
        name text NOT NULL,
        scopes text NOT NULL,
        secret_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      );

      CREATE TABLE api_idempotency (
        key_id text NOT NULL,
        idempotency_key text NOT NULL,
        request_hash text NOT NULL,
        status integer,
        response text,
        created_at timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz,
        PRIMARY KEY (key_id, idempotency_key)
      );
      CREATE INDEX api_idempotency_created_at_idx ON api_idempotency (created_at);
    `,
  },
  {
    version: 8,
    name: "the HTTP API: each key's request budget, a token bucket shared by every API process",
    sql: `
      CREATE TABLE api_rate_buckets (
        key_id text PRIMARY KEY,
        tokens double precision NOT NULL,
        updated_at timestamptz NOT NULL
      );
    `,
  },
  {
    version: 9,
    name: "the HTTP API: the people of a domain's or a campaign's preview, uploaded page by page",
    sql: `
      CREATE TABLE api_uploads (
        upload_id text PRIMARY KEY,
        key_id text NOT NULL,
        kind text NOT NULL,
        pages integer NOT NULL DEFAULT 0,
        people integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE api_upload_pages (
        upload_id text NOT NULL REFERENCES api_uploads (upload_id) ON DELETE CASCADE,
        page integer NOT NULL,
        people text NOT NULL,
        PRIMARY KEY (upload_id, page)
      );
    `,
  },
  {
    version: 10,
    name: "the webhook outbox's events in order, a page at a time for operators",
    sql: `CREATE INDEX notifications_seq_idx ON notifications (seq);`,
  },
];
