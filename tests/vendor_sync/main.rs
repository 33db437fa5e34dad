//! The stock sync from mock vendors over HTTP, through the `stock-sync` command and
//! into PostgreSQL at full size.

mod cli;
mod postgres_full_size;
mod support;
