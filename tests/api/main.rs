//! The HTTP API end to end over a real socket: in-memory backends, and PostgreSQL for
//! the order endpoints.

mod auth;
mod bad_input;
mod catalog_and_holds;
mod docs_browser;
mod events;
mod health_and_docs;
mod limits;
mod operations;
mod orders;
mod postgres;
mod support;
mod test_cache;
mod webhooks;
