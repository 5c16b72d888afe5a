//! The SQL both databases run, written once.
//!
//! Every statement uses `$N` placeholders (sqlx's SQLite driver reads them as positions too)
//! and SQL that SQLite and PostgreSQL agree on: upserts with `ON CONFLICT`, `RETURNING`,
//! window functions. What differs is only the sqlx driver type, so each part is a macro that
//! a backend instantiates with its own store and driver:
//! - [`core_store!`](crate::core_store): the [`Store`](crate::Store) trait;
//! - [`history_fns!`](crate::history_fns): appending and reading channel history;
//! - [`inbox_store!`](crate::inbox_store): the [`InboxStore`](crate::InboxStore) trait;
//! - [`chat_store!`](crate::chat_store): the [`ChatStore`](crate::ChatStore) trait, with each
//!   database's own search statement.
//!
//! Generic functions over `sqlx::Database` would need a page of trait bounds on each; a
//! macro keeps the SQL readable and type-checked against both drivers.

pub(crate) mod chat;
pub(crate) mod core;
pub(crate) mod history;
pub(crate) mod inbox;
