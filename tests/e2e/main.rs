//! End to end: the whole system in-process, over HTTP, on in-memory backends and on the
//! real PostgreSQL, RabbitMQ and Redis.

mod binaries;
mod in_memory;
mod ops_listener;
mod read_replica;
mod real_services;
mod settings_reach_backends;
mod support;
mod tls;
mod tour;
mod webhooks_kill;
