//! The tables, in the shape `diesel print-schema` produces (written by hand: diesel_cli needs
//! libpq). The SQL lives in `migrations/`; this mirrors it for typed rows.

// @generated-style: keep in sync with migrations/.

diesel::table! {
    queues (namespace, name) {
        namespace -> Text,
        name -> Text,
        ttl -> Int8,
        retries -> Int4,
        retry_delay -> Int8,
        lease -> Int8,
        paused_at -> Nullable<Timestamptz>,
        max_running -> Nullable<Int4>,
        rate_per_second -> Nullable<Float8>,
        rate_burst -> Nullable<Int4>,
        rate_tokens -> Nullable<Float8>,
        rate_at -> Nullable<Timestamptz>,
        claim_seq -> Int8,
    }
}

diesel::table! {
    tasks (id) {
        id -> Int8,
        namespace -> Text,
        queue -> Text,
        payload -> Jsonb,
        result -> Nullable<Jsonb>,
        worker -> Nullable<Text>,
        created_at -> Timestamptz,
        delayed_at -> Nullable<Timestamptz>,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        dies_at -> Timestamptz,
        lease_expires_at -> Nullable<Timestamptz>,
        retries -> Int4,
        max_retries -> Int4,
        state -> Text,
        priority -> Int2,
        unique_key -> Nullable<Text>,
        cancel_requested_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    tickers (namespace, name) {
        namespace -> Text,
        name -> Text,
        payload -> Jsonb,
        interval -> Nullable<Int8>,
        timestamp -> Nullable<Timestamptz>,
        queue -> Nullable<Text>,
        priority -> Nullable<Int2>,
        paused_at -> Nullable<Timestamptz>,
        cron -> Nullable<Text>,
        timezone -> Nullable<Text>,
        next_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(queues, tasks, tickers);
